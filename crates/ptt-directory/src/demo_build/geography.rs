//! The demo district's map, as data: a fictional district 4 km × 3 km around
//! 30.25 N, 120.15 E, written in whole metres east and north of that centre so the tables
//! can be read and checked by eye.
//!
//! - The 8 areas are slices around the centre, in a ring clockwise from the south-west
//!   (Riverside) to the south (Harbour), so each neighbours the one before and after it.
//! - A ring road 1,700 m east/west and 1,250 m north/south of the centre carries the
//!   3 trunk roads: Trunk Road 1 from Riverside to Station Square, 2 on to the University
//!   District, 3 back round the south.
//! - Line *k* (1–8) is a V on foot: from the ring road in area *k* in to an inner ring
//!   450 m from the centre, where it crosses into area *k*+1, and out again. Line 2 goes on
//!   along the ring road to where Line 3 starts. Line 9 follows the inner ring from the
//!   south round the west.
//! - A key area is the block between two lines, the ring road and the inner ring; its patrol
//!   walks round the block's streets, and the key-area zone is the block 20 m inside them.
//! - Each area holds 4 compounds (premises circles, 40–80 m): one on the ring road, one
//!   beside each line arm, one in the corner where a line meets the inner ring. Each sits
//!   25 m from the street it faces, so every route passes 3 or 4 compounds within 30 m, one
//!   after the other, and clears one before it reaches the next.
//!
//! Degrees come from fixed metres-per-degree constants (not a run-time cosine), so the
//! generated asset is the same to the byte everywhere.

use crate::GeoPoint;

/// Whole metres east and north of [`CENTRE`].
pub(crate) type Xy = [i32; 2];

/// The middle of the district.
pub(crate) const CENTRE: GeoPoint = GeoPoint {
    lat: 30.25,
    lon: 120.15,
};

/// Metres per degree of latitude on the mean sphere `geo.rs` uses (6,371,008.8 m × π/180).
const METRES_PER_DEGREE_LAT: f64 = 111_195.08;
/// The same times cos 30.25°: metres per degree of longitude at the district.
const METRES_PER_DEGREE_LON: f64 = 96_054.26;

/// Half the width of a route segment's corridor: streets 40 m wide.
pub(crate) const CORRIDOR_HALF_WIDTH_M: f64 = 20.0;

/// A position `east` and `north` metres from the centre, rounded to 1e-6° (about 0.1 m)
/// so the TOML and the tracks carry short numbers.
pub(crate) fn point(east: f64, north: f64) -> GeoPoint {
    let round = |v: f64| (v * 1e6).round() / 1e6;
    GeoPoint {
        lat: round(CENTRE.lat + north / METRES_PER_DEGREE_LAT),
        lon: round(CENTRE.lon + east / METRES_PER_DEGREE_LON),
    }
}

/// [`point`] of a table entry.
pub(crate) fn at(xy: Xy) -> GeoPoint {
    point(f64::from(xy[0]), f64::from(xy[1]))
}

/// Corners of the 8 areas (zones 1–8, in `ZONES` order): slices meeting at the centre.
pub(crate) const AREAS: [&[Xy]; 8] = [
    &[[0, 0], [-800, -1500], [-2000, -1500], [-2000, -750]],
    &[[0, 0], [-2000, -750], [-2000, 750]],
    &[[0, 0], [-2000, 750], [-2000, 1500], [-800, 1500]],
    &[[0, 0], [-800, 1500], [800, 1500]],
    &[[0, 0], [800, 1500], [2000, 1500], [2000, 750]],
    &[[0, 0], [2000, 750], [2000, -750]],
    &[[0, 0], [2000, -750], [2000, -1500], [800, -1500]],
    &[[0, 0], [800, -1500], [-800, -1500]],
];

/// The district's outline (what the areas tile).
pub(crate) const DISTRICT: [Xy; 4] = [[-2000, -1500], [2000, -1500], [2000, 1500], [-2000, 1500]];

/// The 4 key areas (zones 41–44, patrol groups 34–37): name, the area they lie in, corners.
pub(crate) const KEY_AREAS: [(&str, u32, &[Xy]); 4] = [
    (
        "Station Square key area",
        4,
        &[
            [-227, 1230],
            [227, 1230],
            [197, 532],
            [117, 417],
            [-193, 417],
        ],
    ),
    (
        "Old Town Market key area",
        2,
        &[
            [-1680, -224],
            [-1680, 224],
            [-618, 151],
            [-441, 81],
            [-441, -139],
        ],
    ),
    (
        "North Industrial Park key area",
        5,
        &[
            [1075, 1230],
            [1392, 1230],
            [1577, 1045],
            [589, 308],
            [385, 230],
            [239, 396],
        ],
    ),
    (
        "Riverside Promenade key area",
        1,
        &[
            [-1075, -1230],
            [-1392, -1230],
            [-1577, -1045],
            [-589, -308],
            [-385, -230],
            [-239, -396],
        ],
    ),
];

/// Each enterprise's premises (zone 101 + i for enterprise i): centre and radius in metres.
/// Enterprise i lies in area i % 8 + 1; per area: ring road, line arm, inner corner,
/// second line arm (in Textile Quarter a second ring-road compound instead).
pub(crate) const PREMISES: [(Xy, u32); 32] = [
    ([-1337, -1165], 60),
    ([-1610, 0], 65),
    ([-1316, 1145], 80),
    ([0, 1180], 45),
    ([1347, 1174], 50),
    ([1635, 0], 40),
    ([1326, -1154], 70),
    ([0, -1150], 75),
    ([-1204, -841], 55),
    ([-1322, 145], 50),
    ([-870, 934], 60),
    ([147, 998], 65),
    ([1189, 861], 80),
    ([1321, -150], 45),
    ([863, -941], 50),
    ([-172, -997], 40),
    ([-342, -393], 70),
    ([-521, -65], 75),
    ([-433, 266], 55),
    ([-140, 472], 50),
    ([328, 393], 60),
    ([511, 74], 65),
    ([436, -300], 80),
    ([145, -467], 45),
    ([-735, -813], 50),
    ([-1129, -141], 40),
    ([-852, 1345], 70),
    ([-132, 870], 75),
    ([739, 810], 55),
    ([1130, 131], 50),
    ([1023, -713], 60),
    ([142, -870], 65),
];

/// How a route is patrolled, which sets the speed of its demo track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Trunk roads: motorcycle.
    Driving,
    /// Key areas and lines: on foot.
    Walking,
}

impl Mode {
    /// Metres per second of a patrol.
    pub(crate) fn speed_mps(self) -> f64 {
        match self {
            Mode::Driving => 8.0,
            Mode::Walking => 1.4,
        }
    }

    /// For the track's header line.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Mode::Driving => "driving speed (motorcycle, 8 m/s)",
            Mode::Walking => "walking speed (on foot, 1.4 m/s)",
        }
    }
}

/// A patrol route: its name (also its group's), how it is patrolled, its waypoints.
pub(crate) struct Route {
    pub(crate) name: &'static str,
    pub(crate) mode: Mode,
    pub(crate) waypoints: &'static [Xy],
}

const fn route(name: &'static str, mode: Mode, waypoints: &'static [Xy]) -> Route {
    Route {
        name,
        mode,
        waypoints,
    }
}

/// The 16 routes, in group order from 31: 3 trunk roads, 4 key areas, 9 lines.
pub(crate) const ROUTES: [Route; 16] = {
    use Mode::{Driving, Walking};
    [
        route(
            "Trunk Road 1",
            Driving,
            &[
                [-1607, -1043],
                [-1700, -950],
                [-1700, 950],
                [-1400, 1250],
                [-248, 1250],
            ],
        ),
        route(
            "Trunk Road 2",
            Driving,
            &[[-248, 1250], [1400, 1250], [1700, 950], [1700, -246]],
        ),
        route(
            "Trunk Road 3",
            Driving,
            &[
                [1700, -246],
                [1700, -950],
                [1400, -1250],
                [-1400, -1250],
                [-1607, -1043],
            ],
        ),
        route(
            "Station Square key area",
            Walking,
            &[
                [-248, 1250],
                [248, 1250],
                [217, 525],
                [127, 397],
                [-212, 397],
                [-248, 1250],
            ],
        ),
        route(
            "Old Town Market key area",
            Walking,
            &[
                [-1700, -246],
                [-1700, 246],
                [-613, 171],
                [-421, 95],
                [-421, -158],
                [-1700, -246],
            ],
        ),
        route(
            "North Industrial Park key area",
            Walking,
            &[
                [1067, 1250],
                [1400, 1250],
                [1607, 1043],
                [599, 291],
                [379, 206],
                [212, 397],
                [1067, 1250],
            ],
        ),
        route(
            "Riverside Promenade key area",
            Walking,
            &[
                [-1067, -1250],
                [-1400, -1250],
                [-1607, -1043],
                [-599, -291],
                [-379, -206],
                [-212, -397],
                [-1067, -1250],
            ],
        ),
        route(
            "Line 1",
            Walking,
            &[[-1607, -1043], [-421, -158], [-1700, -246]],
        ),
        route(
            "Line 2",
            Walking,
            &[
                [-1700, 246],
                [-421, 158],
                [-1607, 1043],
                [-1400, 1250],
                [-1067, 1250],
            ],
        ),
        route(
            "Line 3",
            Walking,
            &[[-1067, 1250], [-212, 397], [-248, 1250]],
        ),
        route("Line 4", Walking, &[[248, 1250], [212, 397], [1067, 1250]]),
        route("Line 5", Walking, &[[1607, 1043], [421, 158], [1700, 246]]),
        route(
            "Line 6",
            Walking,
            &[[1700, -246], [421, -158], [1607, -1043]],
        ),
        route(
            "Line 7",
            Walking,
            &[[1067, -1250], [212, -397], [248, -1250]],
        ),
        route(
            "Line 8",
            Walking,
            &[[-248, -1250], [-212, -397], [-1067, -1250]],
        ),
        route(
            "Line 9",
            Walking,
            &[
                [0, -397],
                [-212, -397],
                [-421, -158],
                [-421, 158],
                [-212, 397],
                [0, 397],
            ],
        ),
    ]
};

/// The corridor of the leg `a`–`b`: a rectangle [`CORRIDOR_HALF_WIDTH_M`] either side,
/// reaching as far past each end so the corridors of consecutive legs overlap at the turn.
pub(crate) fn corridor(a: Xy, b: Xy) -> Vec<GeoPoint> {
    let (ax, ay) = (f64::from(a[0]), f64::from(a[1]));
    let (dx, dy) = (f64::from(b[0]) - ax, f64::from(b[1]) - ay);
    let length = dx.hypot(dy);
    let w = CORRIDOR_HALF_WIDTH_M;
    let (ux, uy) = (dx / length * w, dy / length * w);
    let (start_x, start_y) = (ax - ux, ay - uy);
    let (end_x, end_y) = (ax + dx + ux, ay + dy + uy);
    // Left of the direction of travel is (-uy, ux).
    vec![
        point(start_x + uy, start_y - ux),
        point(end_x + uy, end_y - ux),
        point(end_x - uy, end_y + ux),
        point(start_x - uy, start_y + ux),
    ]
}

/// A route's length along its waypoints, metres (plane geometry, as the tables are).
pub(crate) fn length_m(waypoints: &[Xy]) -> f64 {
    waypoints
        .windows(2)
        .map(|w| f64::from(w[1][0] - w[0][0]).hypot(f64::from(w[1][1] - w[0][1])))
        .sum()
}

/// The position `distance` metres along the waypoints (clamped to the ends).
pub(crate) fn along(waypoints: &[Xy], distance: f64) -> GeoPoint {
    let mut left = distance.max(0.0);
    for w in waypoints.windows(2) {
        let (ax, ay) = (f64::from(w[0][0]), f64::from(w[0][1]));
        let (dx, dy) = (f64::from(w[1][0]) - ax, f64::from(w[1][1]) - ay);
        let leg = dx.hypot(dy);
        if left <= leg && leg > 0.0 {
            let t = left / leg;
            return point(ax + dx * t, ay + dy * t);
        }
        left -= leg;
    }
    let last = waypoints.last().copied().unwrap_or([0, 0]);
    at(last)
}
