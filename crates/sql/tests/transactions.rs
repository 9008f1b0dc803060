//! Transaction control statements, strict shapes, and XA.

#[macro_use]
mod common;

use common::{PRIMARY, REPLICA};
use rwproxy_sql::{classify, StatementKind::*};

#[test]
fn begin_and_start_transaction() {
    expect_all! {
        "BEGIN" => Begin { read_only: false }, [], PRIMARY;
        "begin" => Begin { read_only: false }, [], PRIMARY;
        "BEGIN WORK" => Begin { read_only: false }, [], PRIMARY;
        "BEGIN;" => Begin { read_only: false }, [], PRIMARY;
        "  begin work ;  " => Begin { read_only: false }, [], PRIMARY;
        "START TRANSACTION" => Begin { read_only: false }, [], PRIMARY;
        "start transaction" => Begin { read_only: false }, [], PRIMARY;
        "START TRANSACTION READ ONLY" => Begin { read_only: true }, [READ_ONLY_TXN], PRIMARY;
        "START TRANSACTION READ WRITE" => Begin { read_only: false }, [], PRIMARY;
        "START TRANSACTION WITH CONSISTENT SNAPSHOT" => Begin { read_only: false }, [], PRIMARY;
        "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY" => Begin { read_only: true }, [READ_ONLY_TXN], PRIMARY;
        "start transaction read only, with consistent snapshot" => Begin { read_only: true }, [READ_ONLY_TXN], PRIMARY;
        "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ WRITE" => Begin { read_only: false }, [], PRIMARY;
        "START TRANSACTION /*!40108 WITH CONSISTENT SNAPSHOT */" => Begin { read_only: false }, [], PRIMARY;
        "/* app */ START TRANSACTION READ ONLY;" => Begin { read_only: true }, [READ_ONLY_TXN], PRIMARY;
        "START TRANSACTION -- tx\n" => Begin { read_only: false }, [], PRIMARY;
    }
}

#[test]
fn commit_and_rollback() {
    expect_all! {
        "COMMIT" => Commit, [], PRIMARY;
        "commit;" => Commit, [], PRIMARY;
        "COMMIT WORK" => Commit, [], PRIMARY;
        "COMMIT AND CHAIN" => Commit, [TXN_CHAIN], PRIMARY;
        "COMMIT AND NO CHAIN" => Commit, [], PRIMARY;
        "COMMIT RELEASE" => Commit, [TXN_RELEASE], PRIMARY;
        "COMMIT NO RELEASE" => Commit, [], PRIMARY;
        "COMMIT WORK AND CHAIN NO RELEASE" => Commit, [TXN_CHAIN], PRIMARY;
        "COMMIT AND NO CHAIN RELEASE" => Commit, [TXN_RELEASE], PRIMARY;
        "COMMIT /* done */" => Commit, [], PRIMARY;
        "COMMIT -- done" => Commit, [], PRIMARY;
        "ROLLBACK" => Rollback, [], PRIMARY;
        "rollback work" => Rollback, [], PRIMARY;
        "ROLLBACK AND CHAIN" => Rollback, [TXN_CHAIN], PRIMARY;
        "ROLLBACK WORK AND NO CHAIN NO RELEASE" => Rollback, [], PRIMARY;
        "ROLLBACK RELEASE" => Rollback, [TXN_RELEASE], PRIMARY;
    }
}

#[test]
fn savepoints() {
    expect_all! {
        "SAVEPOINT sp1" => Savepoint, [], PRIMARY;
        "savepoint `my savepoint`" => Savepoint, [], PRIMARY;
        "RELEASE SAVEPOINT sp1" => ReleaseSavepoint, [], PRIMARY;
        "release savepoint `my savepoint`;" => ReleaseSavepoint, [], PRIMARY;
        "ROLLBACK TO SAVEPOINT sp1" => RollbackToSavepoint, [], PRIMARY;
        "ROLLBACK TO sp1" => RollbackToSavepoint, [], PRIMARY;
        "ROLLBACK WORK TO SAVEPOINT `my savepoint`" => RollbackToSavepoint, [], PRIMARY;
        "rollback work to sp1;" => RollbackToSavepoint, [], PRIMARY;
    }
}

#[test]
fn malformed_transaction_statements_are_unknown() {
    expect_all! {
        "COMMIT garbage" => Unknown, [], PRIMARY;
        "COMMIT AND" => Unknown, [], PRIMARY;
        "COMMIT AND NO" => Unknown, [], PRIMARY;
        "COMMIT NO" => Unknown, [], PRIMARY;
        "ROLLBACK TO" => Unknown, [], PRIMARY;
        "ROLLBACK TO SAVEPOINT" => Unknown, [], PRIMARY;
        "ROLLBACK TO sp1 extra" => Unknown, [], PRIMARY;
        "SAVEPOINT" => Unknown, [], PRIMARY;
        "SAVEPOINT 'sp'" => Unknown, [], PRIMARY;
        "RELEASE sp1" => Unknown, [], PRIMARY;
        "RELEASE SAVEPOINT" => Unknown, [], PRIMARY;
        "START TRANSACTION READ" => Unknown, [], PRIMARY;
        "START TRANSACTION WITH SNAPSHOT" => Unknown, [], PRIMARY;
        "START TRANSACTION READ ONLY READ WRITE" => Unknown, [], PRIMARY;
        "START TRANSACTION ISOLATION LEVEL SERIALIZABLE" => Unknown, [], PRIMARY;
        "BEGIN TRANSACTION" => Unknown, [], PRIMARY;
        "BEGIN NOT" => Unknown, [], PRIMARY;
    }
}

#[test]
fn set_transaction_characteristics() {
    expect_all! {
        "SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED" => SetTransaction, [], PRIMARY;
        "SET TRANSACTION ISOLATION LEVEL READ COMMITTED" => SetTransaction, [], PRIMARY;
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ" => SetTransaction, [], PRIMARY;
        "set transaction isolation level serializable" => SetTransaction, [], PRIMARY;
        "SET TRANSACTION READ ONLY" => SetTransaction, [READ_ONLY_TXN], PRIMARY;
        "SET TRANSACTION READ WRITE" => SetTransaction, [], PRIMARY;
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY" => SetTransaction, [READ_ONLY_TXN], PRIMARY;
        "SET TRANSACTION READ ONLY, ISOLATION LEVEL READ COMMITTED" => SetTransaction, [READ_ONLY_TXN], PRIMARY;
        "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED" => SetTransaction, [SESSION_SCOPE], PRIMARY;
        "SET LOCAL TRANSACTION ISOLATION LEVEL REPEATABLE READ" => SetTransaction, [SESSION_SCOPE], PRIMARY;
        "SET SESSION TRANSACTION READ ONLY" => SetTransaction, [SESSION_SCOPE | READ_ONLY_TXN], PRIMARY;
        "SET GLOBAL TRANSACTION ISOLATION LEVEL READ COMMITTED" => SetGlobal, [], PRIMARY;
        "SET TRANSACTION ISOLATION LEVEL" => Unknown, [], PRIMARY;
        "SET TRANSACTION ISOLATION LEVEL READ SOMETHING" => Unknown, [], PRIMARY;
        "SET TRANSACTION" => Unknown, [], PRIMARY;
        "SET TRANSACTION READ ONLY READ WRITE" => Unknown, [], PRIMARY;
    }
}

#[test]
fn xa_and_compound_statements() {
    expect_all! {
        "XA START 'xid1'" => Xa, [], PRIMARY;
        "XA BEGIN 'xid1'" => Xa, [], PRIMARY;
        "XA END 'xid1'" => Xa, [], PRIMARY;
        "XA PREPARE 'xid1'" => Xa, [], PRIMARY;
        "XA COMMIT 'xid1'" => Xa, [], PRIMARY;
        "XA COMMIT 'xid1' ONE PHASE" => Xa, [], PRIMARY;
        "XA ROLLBACK 'xid1'" => Xa, [], PRIMARY;
        "xa recover" => Xa, [], PRIMARY;
        "BEGIN NOT ATOMIC SELECT 1; END" => Other, [MULTI_STATEMENT], PRIMARY;
        "START SLAVE" => Other, [], PRIMARY;
        "START REPLICA" => Other, [], PRIMARY;
    }
}

#[test]
fn several_statements_in_one_packet() {
    expect_all! {
        "START TRANSACTION; INSERT INTO t VALUES (1); COMMIT" => Begin { read_only: false }, [MULTI_STATEMENT], PRIMARY;
        "COMMIT; BEGIN" => Commit, [MULTI_STATEMENT], PRIMARY;
        "BEGIN; SELECT 1" => Begin { read_only: false }, [MULTI_STATEMENT], PRIMARY;
        "ROLLBACK; -- reset\n" => Rollback, [], PRIMARY;
        "COMMIT; SELECT 1" => Commit, [MULTI_STATEMENT], PRIMARY;
    }
    // Reads inside a packet that also begins a transaction still make it primary-only.
    expect_all! {
        "SELECT 1; BEGIN" => Read, [MULTI_STATEMENT], PRIMARY;
        "SELECT 1" => Read, [], REPLICA;
    }
}

#[test]
fn transaction_control_helper() {
    for sql in [
        "BEGIN",
        "START TRANSACTION READ ONLY",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT a",
        "RELEASE SAVEPOINT a",
        "ROLLBACK TO a",
        "XA END 'x'",
    ] {
        assert!(classify(sql.as_bytes()).is_transaction_control(), "{sql}");
    }
    for sql in [
        "SELECT 1",
        "SET autocommit=0",
        "SET TRANSACTION READ ONLY",
        "LOCK TABLES t READ",
        "START SLAVE",
    ] {
        assert!(!classify(sql.as_bytes()).is_transaction_control(), "{sql}");
    }
}
