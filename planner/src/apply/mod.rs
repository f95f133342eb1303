//! Apply: the only part of the planner that talks to the API. `refresh` lays the API's view over
//! the recorded state before planning; `exec` carries a plan out; `resolve` converts between the
//! planner's values and the provider's objects.

pub mod exec;
mod host;
mod live;
mod migrate;
mod rebalance;
mod recorded;
pub mod refresh;
pub mod resolve;

pub use exec::{Event, Progress, Report, Services, apply};
pub use host::{HostTimeouts, refresh_hosts};
pub use live::count_live;
pub use migrate::migration_lag;
pub use refresh::{Refreshed, refresh};
