#!/usr/bin/perl
# Differential runner for Perl's DBI with DBD::MariaDB (Debian's libdbd-mariadb-perl, on
# MariaDB Connector/C).
#
#   perl runner.pl --lib dbd-mariadb --scenarios FILE --port P --admin-port A [--tls-ca CA]
#
# Prints one JSON transcript (see ../common.py for the format) on stdout. The text protocol is
# mariadb_server_prepare=0 (DBD::MariaDB interpolates placeholders itself), the binary protocol
# mariadb_server_prepare=1 without fallback. DBD::MariaDB has no COM_CHANGE_USER,
# COM_RESET_CONNECTION or server-side cursor: those scenarios are unsupported.
use strict;
use warnings;
use utf8;

use B ();
use DBI qw(:sql_types);
use DBD::MariaDB;
use Digest::SHA qw(sha256_hex);
use Encode ();
use File::Temp qw(tempdir);
use JSON::PP ();

use constant HASH_OVER => 2048;
use constant FEATURES => qw(multi_statements multi_results local_infile tls compress prepared);

my %args = (host => '127.0.0.1', user => 'app', password => 'app_pass', database => 'app',
            'admin-user' => 'admin', 'admin-password' => 'admin_pass', 'tls-ca' => '', only => '');
for (my $i = 0; $i + 1 < @ARGV; $i += 2) {
    (my $k = $ARGV[$i]) =~ s/^--//;
    $args{$k} = $ARGV[$i + 1];
}

# A scalar's kind as Perl holds it, read before anything stringifies it: IV/UV/NV (a number),
# str (a character string, i.e. decoded), bytes (a byte string: printable ASCII as is, else hex).
sub kind {
    my $f = B::svref_2object(\$_[0])->FLAGS;
    return 'str' if ($f & B::SVf_POK) && utf8::is_utf8($_[0]);
    return 'bytes' if $f & B::SVf_POK;
    return ($f & B::SVf_IVisUV) ? 'UV' : 'IV' if $f & B::SVf_IOK;
    return 'NV' if $f & B::SVf_NOK;
    return 'other';
}

# A value as the application received it: [kind, canonical text].
sub enc {
    my ($v) = @_;
    return undef unless defined $v;
    my $k = kind($v);
    if ($k eq 'str') {
        my $b = Encode::encode('UTF-8', $v);
        return length($b) > HASH_OVER ? [$k, 'len=' . length($b) . ' sha256=' . sha256_hex($b)] : [$k, $v];
    }
    if ($k eq 'bytes') {
        return [$k, 'len=' . length($v) . ' sha256=' . sha256_hex($v)] if length($v) > HASH_OVER;
        # DBD::MariaDB decodes text, but leaves an ASCII-only value a byte string: shown as is.
        return [$k, $v =~ /\A[\x20-\x7e]*\z/ ? $v : 'hex:' . unpack('H*', $v)];
    }
    return [$k, sprintf('%.17g', $v)] if $k eq 'NV';
    return [$k, "$v"];
}

sub big_param {
    my ($p) = @_;
    return ref($p) eq 'HASH' && exists $p->{repeat} ? $p->{repeat} x $p->{times} : $p;
}

# ------------------------------------------------------------------ the driver

my ($dbh, %result);

sub dsn {
    my ($port, $o) = @_;
    my $dsn = "DBI:MariaDB:host=$args{host};port=$port;mariadb_connect_timeout=10;mariadb_read_timeout=60";
    $dsn .= ";database=$args{database}" if $port == $args{port};
    $dsn .= ';mariadb_multi_statements=1' if $o->{multi_statements};
    $dsn .= ';mariadb_local_infile=1' if $o->{local_infile};
    $dsn .= ';mariadb_compression=1' if $o->{compress};
    $dsn .= ";mariadb_ssl=1;mariadb_ssl_ca_file=$args{'tls-ca'};mariadb_ssl_verify_server_cert=1" if $o->{tls};
    return $dsn;
}

sub connect_db {
    my ($o) = @_;
    $dbh = DBI->connect(dsn($args{port}, $o), $args{user}, $args{password},
                        {RaiseError => 1, PrintError => 0, AutoCommit => 1});
    $result{version} .= $dbh->{mariadb_clientinfo} if $result{version} =~ / $/;
    # Not the thread id, the host info or mariadb_stat: they differ between any two connections.
    return {server_info => $dbh->{mariadb_serverinfo}, server_version => $dbh->{mariadb_serverversion},
            proto => $dbh->{mariadb_protoinfo}, tls => defined $dbh->{mariadb_ssl_cipher} ? JSON::PP::true : JSON::PP::false,
            dbms => $dbh->get_info(17) . ' ' . $dbh->get_info(18)};
}

sub close_db {
    if ($dbh) { eval { $dbh->disconnect }; $dbh = undef; }
}

# The error of the last DBI call: a server error (code < 2000) or undef.
sub server_error {
    my $code = $DBI::err;
    return undef unless defined $code && $code =~ /^\d+$/ && $code > 0 && $code < 2000;
    return {code => $code + 0, sqlstate => $DBI::state, message => $DBI::errstr};
}

sub describe {
    my ($e) = @_;
    my $se = server_error();
    return $se if $se;
    (my $msg = "$e") =~ s/ at \S+ line \d+\.?\n?\z//;
    return {exception => substr($msg, 0, 500), code => $DBI::err, sqlstate => $DBI::state};
}

sub column_attr {
    my ($sth, $attr, $i) = @_;
    my $a = $sth->{$attr};
    return ref $a eq 'ARRAY' ? $a->[$i] : undef;
}

# One result of an executed statement handle, appended to @$out.
sub record {
    my ($sth, $out) = @_;
    my $n = $sth->{NUM_OF_FIELDS} || 0;
    my %item = (warnings => $sth->{mariadb_warning_count}, dbh_warnings => $dbh->{mariadb_warning_count});
    if ($n > 0) {
        my @cols;
        for my $i (0 .. $n - 1) {
            my %c;
            for my $attr (qw(NAME TYPE PRECISION SCALE NULLABLE mariadb_type mariadb_type_name mariadb_is_num
                             mariadb_is_blob mariadb_is_key mariadb_is_pri_key mariadb_is_auto_increment
                             mariadb_length mariadb_table)) {
                $c{$attr} = column_attr($sth, $attr, $i);
            }
            push @cols, \%c;
        }
        my $rows = $sth->fetchall_arrayref;
        $item{columns} = \@cols;
        # Known only once the rows are read (the longest value of each column).
        $item{max_length} = $sth->{mariadb_max_length};
        $item{rows} = [map { [map { enc($_) } @$_] } @$rows];
        $item{rowcount} = $sth->rows;
    } else {
        $item{rows_affected} = $sth->rows;
        $item{insertid} = $sth->{mariadb_insertid};
        $item{last_insert_id} = $sth->last_insert_id;
        $item{info} = $dbh->{mariadb_info};
    }
    push @$out, \%item;
}

# DBD::MariaDB reads one result of a server-side prepared statement only ("Processing of
# multiple result set is not possible with server side prepare"): more_results is for text.
sub drain {
    my ($sth, $out, $server) = @_;
    do { record($sth, $out) } while (!$server && $sth->more_results);
    $sth->finish;
}

sub number_type {
    my ($p) = @_;
    return undef unless defined $p;
    my $k = kind($p);
    return $k eq 'IV' || $k eq 'UV' ? SQL_BIGINT : $k eq 'NV' ? SQL_DOUBLE : undef;
}

sub run_sql {
    my ($sql, $params, $out, $server) = @_;
    my $sth = $dbh->prepare($sql, {mariadb_server_prepare => $server,
                                   mariadb_server_prepare_disable_fallback => 1});
    my $i = 0;
    for my $p (@$params) {
        my $t = $server ? number_type($p) : undef;
        $t ? $sth->bind_param(++$i, $p, $t) : $sth->bind_param(++$i, $p);
    }
    my $rv = $sth->execute;
    push @$out, {execute => "$rv"};
    drain($sth, $out, $server);
}

sub admin {
    my ($sql) = @_;
    my $a = DBI->connect(dsn($args{'admin-port'}, {}), $args{'admin-user'}, $args{'admin-password'},
                         {RaiseError => 1, PrintError => 0});
    $a->do($sql);
    $a->disconnect;
}

# ------------------------------------------------------------------ loop

my %features = map { $_ => 1 } FEATURES;
my %only = map { $_ => 1 } grep { length } split /,/, $args{only};
my $json = JSON::PP->new->utf8->canonical;
my $scenarios = do {
    open my $fh, '<:raw', $args{scenarios} or die "$args{scenarios}: $!";
    local $/;
    $json->decode(<$fh>)->{scenarios};
};
my $tmp = tempdir('rwproxy-diff-XXXXXX', TMPDIR => 1, CLEANUP => 1);
%result = (library => 'perl-dbd-mariadb', scenarios => {},
              version => "DBD::MariaDB $DBD::MariaDB::VERSION, DBI $DBI::VERSION, Perl " . sprintf('%vd', $^V)
                         . ', Connector/C ');
for my $scen (@$scenarios) {
    next if %only && !$only{$scen->{name}};
    my $connect = $scen->{connect} || {};
    my @missing = grep { !$features{$_} } @{$scen->{needs} || []};
    for my $k (sort keys %$connect) {
        push @missing, $k if $connect->{$k} && !$features{$k} && !grep { $_ eq $k } @missing;
    }
    if (@missing) {
        $result{scenarios}{$scen->{name}} = {unsupported => 'library has no ' . join(', ', @missing)};
        next;
    }
    my @steps;
    my $info = eval { connect_db($connect) };
    if (!$info) {
        $result{scenarios}{$scen->{name}} = {connect_error => describe($@)};
        next;
    }
    push @steps, {connect => $info};
    for my $step (@{$scen->{steps}}) {
        my $mode = $step->{mode} || 'text';
        my %rec = (mode => $mode);
        $rec{sql} = substr($step->{sql}, 0, 80) if defined $step->{sql};
        my @results;
        my $ok = eval {
            my @params = map { big_param($_) } @{$step->{params} || []};
            my $sql = $step->{sql} // '';
            $mode = 'prepared' if $mode eq 'prepared_or_text' || $mode eq 'call';
            if ($mode eq 'cursor') {
                $rec{skipped} = 'library has no cursor';
            } elsif ($mode eq 'text') {
                run_sql($sql, \@params, \@results, 0);
            } elsif ($mode eq 'prepared') {
                run_sql($sql, \@params, \@results, 1);
            } elsif ($mode eq 'load_local') {
                my $file = "$tmp/$scen->{name}-" . scalar(@steps) . '.csv';
                open my $fh, '>:encoding(UTF-8)', $file or die "$file: $!";
                print $fh $step->{data};
                close $fh;
                run_sql($sql =~ s/\{file\}/$file/r, [], \@results, 0);
            } elsif ($mode eq 'admin') {
                admin($sql);
            } elsif ($mode eq 'change_user' || $mode eq 'reset_connection') {
                $rec{skipped} = "library has no $mode";
            } else {
                die "unknown mode $mode\n";
            }
            1;
        };
        if (!$ok) {
            $rec{error} = describe($@);
            if (exists $rec{error}{exception}) {
                close_db();
                if (eval { connect_db($connect) }) {
                    $rec{reconnected} = JSON::PP::true;
                } else {
                    $rec{reconnect_error} = describe($@);
                    $rec{results} = \@results;
                    push @steps, \%rec;
                    last;
                }
            }
        }
        $rec{results} = \@results;
        push @steps, \%rec;
    }
    close_db();
    $result{scenarios}{$scen->{name}} = {steps => \@steps};
}
print $json->encode(\%result), "\n";
