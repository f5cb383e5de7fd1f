//! The demo district's names (areas, enterprises, status messages) and how its group
//! and zone ids are laid out.

/// The areas' names, zones 1–8 in order.
pub(crate) const ZONES: [&str; 8] = [
    "Riverside",
    "Old Town",
    "Textile Quarter",
    "Station Square",
    "North Industrial Park",
    "University District",
    "East Gate",
    "Harbour",
];

/// The enterprises' names; enterprise i's group and premises zone are
/// [`FIRST_ENTERPRISE`] plus i.
pub(crate) const ENTERPRISES: [&str; 32] = [
    "Riverside Garden compound",
    "Old Town Market Hall",
    "No. 3 Textile Mill",
    "Station Square Mall",
    "North Industrial Park gate",
    "University Library",
    "East Gate Logistics Centre",
    "Harbour Container Terminal",
    "Lakeview Apartments compound",
    "Old Town Museum",
    "No. 1 Textile Mill",
    "Golden Bridge Hotel",
    "Huaxin Electronics plant",
    "Municipal Hospital",
    "Eastgate Wholesale Market",
    "Harbour Cold Storage",
    "Riverside Power Substation",
    "Grand Theatre",
    "Textile Quarter Dye Works",
    "Central Bus Depot",
    "No. 7 Steel Works",
    "Technical College campus",
    "Jade Garden compound",
    "Harbour Fish Market",
    "Greenfield Residential compound",
    "Sunrise Primary School",
    "Maple Court compound",
    "Station Road Post Office",
    "Northern Gas Station",
    "City Water Works",
    "People's Park",
    "Pearl River Bank branch",
];

/// The predefined status messages, codes 1–9 in order.
pub(crate) const STATUS: [&str; 9] = [
    "On scene",
    "En route",
    "Need backup",
    "All clear",
    "Available",
    "Busy",
    "Returning to base",
    "Message received",
    "Unable to respond",
];

/// The dispatchers' terminal ids.
pub(crate) const DISPATCHERS: std::ops::RangeInclusive<u32> = 1..=3;

/// First patrol route group; routes follow in `ROUTES` order.
pub(crate) const FIRST_ROUTE_GROUP: u32 = 31;
/// First key-area zone; key areas follow in `KEY_AREAS` order.
pub(crate) const FIRST_KEY_AREA_ZONE: u32 = 41;
/// Enterprise i's group and premises zone are both this plus i.
pub(crate) const FIRST_ENTERPRISE: u32 = 101;
/// First route-segment zone; each route's legs follow in order, route after route.
pub(crate) const FIRST_SEGMENT_ZONE: u32 = 201;
