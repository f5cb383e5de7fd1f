//! Picking one terminal's client out of those [`TestRelay::connect_all`]
//! logged in.
//!
//! [`TestRelay::connect_all`]: crate::TestRelay::connect_all

use crate::Client;

/// The client of terminal `id` among `clients`; panics if it is not there.
pub fn by_id(clients: &mut [Client], id: u32) -> &mut Client {
    clients
        .iter_mut()
        .find(|c| c.terminal == id)
        .expect("client")
}
