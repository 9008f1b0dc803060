//! Backend monitor for rwproxy: health, roles, replication lag and GTID
//! positions of every backend, published as an immutable [`Topology`]
//! snapshot that the router reads without locks.
//!
//! - [`Monitor::spawn`] starts one checking task per backend (plus an
//!   optional heartbeat writer) and returns a [`MonitorHandle`].
//! - [`Monitor::static_topology`] is the mode without monitor credentials:
//!   the pinned primary is the primary, the rest replicas, all up; only the
//!   data path's circuit breaker ([`MonitorHandle::report_failure`]) changes
//!   that.
//! - The decisions themselves are pure and live in [`state_machine`],
//!   [`replica_health`] and [`topology::resolve_roles`].

mod address;
mod backend_task;
mod error;
pub mod events;
pub mod galera;
pub mod gtid;
mod heartbeat;
pub mod heartbeat_table;
mod human;
mod kept_connection;
mod monitor;
pub mod observation;
mod primary_gate;
mod probe;
pub mod replica_health;
pub mod settings;
mod shared;
pub mod state_machine;
pub mod status;
pub mod switchover;
pub mod topology;

pub use error::NoPrimary;
pub use events::StateChange;
pub use galera::{GaleraStatus, TopologyMode, WriterRule};
pub use gtid::{GtidError, GtidPosition};
pub use heartbeat_table::{HeartbeatTable, HeartbeatTableError};
pub use monitor::{Monitor, MonitorHandle, DEFAULT_STATIC_COOLDOWN};
pub use primary_gate::PrimaryPass;
pub use settings::{
    validate, validate_backends, BackendSpec, HeartbeatSettings, MonitorSettings, MonitorTls,
    SettingsError,
};
pub use status::{BackendState, BackendStatus, LagSource, Role, ServerFlavor};
pub use topology::{PrimaryState, Topology};
