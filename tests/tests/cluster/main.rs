//! The cluster's agreements over a real NATS server (Debian's `nats-server`
//! with JetStream, started by the tests on loopback): who owns each group's
//! floor, that no two relays ever do at once, and voice between relays.

mod admin;
mod alerts;
mod all_call;
mod backup;
mod calllog;
mod control;
mod failover;
mod floor_requests;
mod in_process;
mod leases;
mod overhead;
mod presence;
mod private_calls;
mod processes;
mod relays;
mod voice;
