//! Positions (WGS-84) and zone shapes, with the one question zone logic asks: how far is
//! this position from that zone?
//!
//! Distances are for a district, a few kilometres across: a circle's is the great-circle
//! (haversine) distance to its centre less the radius; a polygon's is computed in a flat
//! plane tangent at the position (equirectangular projection), whose error over a few
//! kilometres is far below a GPS fix's. Nothing here allocates.

/// Mean Earth radius (IUGG), metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A WGS-84 position in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoPoint {
    /// Latitude, -90..=90, north positive.
    pub lat: f64,
    /// Longitude, -180..=180, east positive.
    pub lon: f64,
}

impl GeoPoint {
    /// A position, or `None` if either coordinate is out of range or not a number (a
    /// terminal's report is checked with this before it is used).
    pub fn new(lat: f64, lon: f64) -> Option<GeoPoint> {
        ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon))
            .then_some(GeoPoint { lat, lon })
    }

    /// Great-circle distance in metres (haversine).
    pub fn distance_m(self, other: GeoPoint) -> f64 {
        let (lat1, lat2) = (self.lat.to_radians(), other.lat.to_radians());
        let dlat = lat2 - lat1;
        let dlon = (other.lon - self.lon).to_radians();
        let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
    }

    /// This point in metres east and north of `origin`, in the plane tangent at `origin`.
    fn metres_from(self, origin: GeoPoint) -> (f64, f64) {
        let metres_per_degree = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
        let east = (self.lon - origin.lon) * metres_per_degree * origin.lat.to_radians().cos();
        let north = (self.lat - origin.lat) * metres_per_degree;
        (east, north)
    }
}

/// The outline of a zone.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Everything within `radius_m` of `centre` (a compound's premises, roughly).
    Circle {
        /// The centre.
        centre: GeoPoint,
        /// Radius in metres, more than zero.
        radius_m: f64,
    },
    /// A simple polygon, at least three corners, closed implicitly (last to first).
    Polygon(Vec<GeoPoint>),
}

impl Shape {
    /// Metres from `point` to the zone's edge; 0 when `point` is inside.
    pub fn distance_m(&self, point: GeoPoint) -> f64 {
        match self {
            Shape::Circle { centre, radius_m } => (centre.distance_m(point) - radius_m).max(0.0),
            Shape::Polygon(corners) => polygon_distance_m(corners, point),
        }
    }

    /// Whether `point` is inside the zone.
    pub fn contains(&self, point: GeoPoint) -> bool {
        self.distance_m(point) == 0.0
    }

    /// A point inside or at the middle of the zone (the circle's centre, the polygon's
    /// vertex average), for maps and demo tracks.
    pub fn centre(&self) -> GeoPoint {
        match self {
            Shape::Circle { centre, .. } => *centre,
            Shape::Polygon(corners) => {
                let n = corners.len().max(1) as f64;
                GeoPoint {
                    lat: corners.iter().map(|c| c.lat).sum::<f64>() / n,
                    lon: corners.iter().map(|c| c.lon).sum::<f64>() / n,
                }
            }
        }
    }
}

/// Distance from `point` to a polygon, in the plane tangent at `point` (so `point` is the
/// origin): 0 if the origin is inside (crossing-number test), else the nearest edge's.
fn polygon_distance_m(corners: &[GeoPoint], point: GeoPoint) -> f64 {
    let Some(&last) = corners.last() else {
        return f64::INFINITY;
    };
    let mut inside = false;
    let mut nearest = f64::INFINITY;
    let mut a = last.metres_from(point);
    for corner in corners {
        let b = corner.metres_from(point);
        // Does the edge cross the ray from the origin towards +east?
        if (a.1 > 0.0) != (b.1 > 0.0) {
            let east_at_crossing = a.0 + (0.0 - a.1) * (b.0 - a.0) / (b.1 - a.1);
            if east_at_crossing > 0.0 {
                inside = !inside;
            }
        }
        nearest = nearest.min(origin_to_segment(a, b));
        a = b;
    }
    if inside { 0.0 } else { nearest }
}

/// Distance from the origin to the segment `a`–`b` (plane coordinates, metres).
fn origin_to_segment(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let length2 = dx * dx + dy * dy;
    let t = if length2 == 0.0 {
        0.0
    } else {
        (-(a.0 * dx + a.1 * dy) / length2).clamp(0.0, 1.0)
    };
    (a.0 + t * dx).hypot(a.1 + t * dy)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A point `east` and `north` metres from `origin` (the inverse of `metres_from`).
    fn offset(origin: GeoPoint, east: f64, north: f64) -> GeoPoint {
        let metres_per_degree = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
        GeoPoint {
            lat: origin.lat + north / metres_per_degree,
            lon: origin.lon + east / (metres_per_degree * origin.lat.to_radians().cos()),
        }
    }

    const ORIGIN: GeoPoint = GeoPoint {
        lat: 30.25,
        lon: 120.15,
    };

    #[test]
    fn haversine_matches_a_known_distance() {
        // One degree of latitude is about 111.2 km on the mean sphere.
        let a = GeoPoint::new(30.0, 120.0).unwrap();
        let b = GeoPoint::new(31.0, 120.0).unwrap();
        assert!(
            (a.distance_m(b) - 111_195.0).abs() < 10.0,
            "{}",
            a.distance_m(b)
        );
        assert_eq!(a.distance_m(a), 0.0);
    }

    #[test]
    fn out_of_range_positions_are_refused() {
        assert!(GeoPoint::new(90.1, 0.0).is_none());
        assert!(GeoPoint::new(0.0, -180.5).is_none());
        assert!(GeoPoint::new(f64::NAN, 0.0).is_none());
        assert!(GeoPoint::new(-90.0, 180.0).is_some());
    }

    #[test]
    fn circle_distance_is_to_the_rim() {
        let circle = Shape::Circle {
            centre: ORIGIN,
            radius_m: 100.0,
        };
        assert_eq!(circle.distance_m(offset(ORIGIN, 50.0, 0.0)), 0.0);
        let d = circle.distance_m(offset(ORIGIN, 0.0, 250.0));
        assert!((d - 150.0).abs() < 0.5, "{d}");
    }

    #[test]
    fn polygon_inside_outside_and_edge_distance() {
        // A 200 m square with its south-west corner at the origin.
        let square = Shape::Polygon(vec![
            ORIGIN,
            offset(ORIGIN, 200.0, 0.0),
            offset(ORIGIN, 200.0, 200.0),
            offset(ORIGIN, 0.0, 200.0),
        ]);
        assert!(square.contains(offset(ORIGIN, 100.0, 100.0)));
        let east = square.distance_m(offset(ORIGIN, 260.0, 100.0));
        assert!((east - 60.0).abs() < 0.5, "{east}");
        // Nearest to a corner, diagonally: 30-40-50.
        let corner = square.distance_m(offset(ORIGIN, -30.0, -40.0));
        assert!((corner - 50.0).abs() < 0.5, "{corner}");
        let centre = square.centre();
        assert!(square.contains(centre));
    }

    #[test]
    fn concave_polygon_notch_is_outside() {
        // A U shape: the notch between the arms is outside.
        let u = Shape::Polygon(vec![
            ORIGIN,
            offset(ORIGIN, 300.0, 0.0),
            offset(ORIGIN, 300.0, 300.0),
            offset(ORIGIN, 200.0, 300.0),
            offset(ORIGIN, 200.0, 100.0),
            offset(ORIGIN, 100.0, 100.0),
            offset(ORIGIN, 100.0, 300.0),
            offset(ORIGIN, 0.0, 300.0),
        ]);
        assert!(!u.contains(offset(ORIGIN, 150.0, 200.0)));
        let d = u.distance_m(offset(ORIGIN, 150.0, 200.0));
        assert!((d - 50.0).abs() < 0.5, "{d}");
        assert!(u.contains(offset(ORIGIN, 50.0, 200.0)));
    }
}
