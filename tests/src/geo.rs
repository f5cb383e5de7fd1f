//! Places for zone scenarios: metres east and north of a fixed origin (30° N, 120° E),
//! turned into WGS-84 the way the relay measures them, so a test can say "100 m north of
//! the road" and know the distances zone logic will compute.

use ptt_proto::pb::{self, client_message::Body as Request};

/// Metres per degree of latitude on the mean sphere (the relay's Earth radius).
pub const METRES_PER_DEGREE: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;

/// The origin's latitude and longitude.
pub const ORIGIN: (f64, f64) = (30.0, 120.0);

/// The position (lat, lon) `east` and `north` metres from the origin.
pub fn at(east: f64, north: f64) -> (f64, f64) {
    (
        ORIGIN.0 + north / METRES_PER_DEGREE,
        ORIGIN.1 + east / (METRES_PER_DEGREE * ORIGIN.0.to_radians().cos()),
    )
}

/// A `LocationReport` request at `east`, `north` (5 m accuracy).
pub fn location(east: f64, north: f64) -> Request {
    let (lat, lon) = at(east, north);
    Request::LocationReport(pb::LocationReport {
        latitude_deg: lat,
        longitude_deg: lon,
        accuracy_m: 5.0,
        ..Default::default()
    })
}

/// A `[[zone]]` table: a premises circle of `radius_m` centred at `east`, `north`.
pub fn premises(zone: u32, name: &str, east: f64, north: f64, radius_m: f64) -> String {
    let (lat, lon) = at(east, north);
    format!(
        "[[zone]]\nid = {zone}\nname = \"{name}\"\nkind = \"premises\"\n\
         circle = {{ lat = {lat}, lon = {lon}, radius-m = {radius_m} }}\n"
    )
}
