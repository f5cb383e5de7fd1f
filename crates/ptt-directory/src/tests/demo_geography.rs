//! The demo district's map: areas tile the district, compounds and key areas lie in their
//! areas and off the streets, every patrol route passes at least three compounds one after
//! another, and the demo GPS tracks are current and do the same when replayed.

use super::*;
use crate::demo_build::catalogue::{FIRST_ENTERPRISE, FIRST_KEY_AREA_ZONE, FIRST_ROUTE_GROUP};
use crate::demo_build::geography::{AREAS, DISTRICT, KEY_AREAS, PREMISES, ROUTES, point};
use crate::demo_build::tracks::{self, Pass};

fn demo() -> Directory {
    Directory::demo().unwrap()
}

fn shape(dir: &Directory, id: u32) -> &Shape {
    dir.zone(ZoneId(id)).unwrap().shape.as_ref().unwrap()
}

fn route_group(dir: &Directory, i: usize) -> &Group {
    dir.group(GroupId(FIRST_ROUTE_GROUP + i as u32)).unwrap()
}

#[test]
fn demo_zones_have_kinds_and_shapes() {
    let dir = demo();
    let count = |k: ZoneKind| dir.zones().iter().filter(|z| z.kind == k).count();
    assert_eq!(count(ZoneKind::Area), 8);
    assert_eq!(count(ZoneKind::KeyArea), 4);
    assert_eq!(count(ZoneKind::Premises), 32);
    let legs: usize = ROUTES.iter().map(|r| r.waypoints.len() - 1).sum();
    assert_eq!(count(ZoneKind::RouteSegment), legs);
    assert!(dir.zones().iter().all(|z| z.shape.is_some()));

    for g in dir.groups() {
        if g.kind == GroupKind::Enterprise {
            let z = dir.zone(g.zone.unwrap()).unwrap();
            assert_eq!((z.kind, &z.name), (ZoneKind::Premises, &g.name));
        }
    }
    for (i, route) in ROUTES.iter().enumerate() {
        let g = route_group(&dir, i);
        assert_eq!(
            (g.kind, g.name.as_str()),
            (GroupKind::PatrolRoute, route.name)
        );
        let first_patrol = 201 + 2 * (g.id.0 - 31);
        assert!(first_patrol < 301, "patrol terminals run into the guards'");
        assert_eq!(
            g.patrol,
            Some(PatrolRule {
                lead: TerminalId(first_patrol),
                approach_m: 60.0,
                hysteresis_m: 30.0
            })
        );
        // The route's segments, in order: each leg's corridor holds its waypoints, so
        // consecutive corridors meet at the turn.
        assert_eq!(g.route.len(), route.waypoints.len() - 1, "{}", route.name);
        for (k, z) in g.route.iter().enumerate() {
            let seg = dir.zone(*z).unwrap();
            assert_eq!(seg.kind, ZoneKind::RouteSegment);
            let corridor = seg.shape.as_ref().unwrap();
            for xy in &route.waypoints[k..k + 2] {
                let p = point(f64::from(xy[0]), f64::from(xy[1]));
                assert!(corridor.contains(p), "{} leg {k}", route.name);
            }
        }
    }
}

#[test]
fn demo_areas_tile_the_district() {
    let dir = demo();
    let areas: Vec<&Shape> = (1..=8).map(|id| shape(&dir, id)).collect();
    let (min, max) = (DISTRICT[0], DISTRICT[2]);
    let mut checked = 0;
    // Every 50 m, offset so no sample falls on a boundary.
    for x in (min[0] + 23..max[0]).step_by(50) {
        for y in (min[1] + 17..max[1]).step_by(50) {
            let p = point(f64::from(x), f64::from(y));
            let inside = areas.iter().filter(|a| a.contains(p)).count();
            assert_eq!(inside, 1, "({x}, {y}) is in {inside} areas");
            checked += 1;
        }
    }
    assert_eq!(checked, 80 * 60);
    assert_eq!(AREAS.len(), 8);
}

/// Points on a circle's rim, every 10°.
fn rim(centre: GeoPoint, radius_m: f64) -> impl Iterator<Item = GeoPoint> {
    (0..36).map(move |k| {
        let a = f64::from(k * 10).to_radians();
        let (dx, dy) = (radius_m * a.cos(), radius_m * a.sin());
        GeoPoint {
            lat: centre.lat + dy / 111_195.08,
            lon: centre.lon + dx / 96_054.26,
        }
    })
}

#[test]
fn demo_premises_and_key_areas_lie_in_their_areas_and_off_the_streets() {
    let dir = demo();
    let circles: Vec<(u32, GeoPoint, f64)> = (0..PREMISES.len() as u32)
        .map(|i| match shape(&dir, FIRST_ENTERPRISE + i) {
            Shape::Circle { centre, radius_m } => (i, *centre, *radius_m),
            other => panic!("premises {i} is {other:?}"),
        })
        .collect();
    let segments: Vec<&Zone> = dir
        .zones()
        .iter()
        .filter(|z| z.kind == ZoneKind::RouteSegment)
        .collect();
    for &(i, centre, radius) in &circles {
        assert!((40.0..=80.0).contains(&radius));
        let area = shape(&dir, i % 8 + 1);
        assert!(
            rim(centre, radius).all(|p| area.contains(p)),
            "premises {} sticks out of area {}",
            FIRST_ENTERPRISE + i,
            i % 8 + 1
        );
        for &(j, other, r) in &circles {
            if j > i {
                assert!(centre.distance_m(other) > radius + r + 30.0, "{i} and {j}");
            }
        }
        for seg in &segments {
            let d = seg.shape.as_ref().unwrap().distance_m(centre);
            assert!(d >= radius, "premises {i} lies on {} ({d:.1} m)", seg.name);
        }
    }
    // Areas are convex, so corners inside means the whole key area is.
    for (i, (name, area, corners)) in KEY_AREAS.iter().enumerate() {
        let z = dir.zone(ZoneId(FIRST_KEY_AREA_ZONE + i as u32)).unwrap();
        assert_eq!((z.kind, z.name.as_str()), (ZoneKind::KeyArea, *name));
        let Some(Shape::Polygon(c)) = &z.shape else {
            panic!("{z:?}")
        };
        assert_eq!(c.len(), corners.len());
        assert!(c.iter().all(|&p| shape(&dir, *area).contains(p)), "{name}");
    }
}

/// Checks a patrol's passes: at least three compounds, each left before the next joins,
/// each passed within `near_m` of its edge. Returns a printable summary.
fn check_passes(name: &str, passes: &[Pass], near_m: f64) -> String {
    assert!(passes.len() >= 3, "{name} passes only {passes:?}");
    for w in passes.windows(2) {
        let left = w[0].left_s.unwrap_or(f64::INFINITY);
        assert!(
            left <= w[1].joined_s,
            "{name}: {} joins before {} leaves: {passes:?}",
            w[1].zone,
            w[0].zone
        );
    }
    for p in passes {
        assert!(p.closest_m <= near_m, "{name}: {p:?}");
        assert!(p.left_s.is_some(), "{name} ends beside {}", p.zone);
    }
    let order: Vec<String> = passes
        .iter()
        .map(|p| {
            format!(
                "{} ({:.1} m, {:.0}–{:.0} s)",
                p.zone,
                p.closest_m,
                p.joined_s,
                p.left_s.unwrap_or(f64::NAN)
            )
        })
        .collect();
    format!("{name}: {}", order.join(" → "))
}

#[test]
fn demo_routes_each_pass_three_compounds_one_after_another() {
    let dir = demo();
    let mut passed = std::collections::BTreeSet::new();
    for (i, route) in ROUTES.iter().enumerate() {
        let rule = route_group(&dir, i).patrol.unwrap();
        let passes = tracks::passes(&dir, &rule, &tracks::dense(route, 1.0));
        // The streets run 25 m from the compounds they serve.
        eprintln!("{}", check_passes(route.name, &passes, 30.0));
        passed.extend(passes.iter().map(|p| p.zone.0));
    }
    let all: Vec<u32> = (0..32).map(|i| FIRST_ENTERPRISE + i).collect();
    assert_eq!(
        passed.into_iter().collect::<Vec<_>>(),
        all,
        "a compound no patrol passes"
    );
}

fn tracks_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/tracks")
}

#[test]
fn demo_tracks_are_current() {
    let dir = tracks_dir();
    if bless() {
        std::fs::create_dir_all(&dir).unwrap();
    }
    let mut stale = Vec::new();
    for route in &ROUTES {
        let path = dir.join(format!("{}.csv", tracks::slug(route.name)));
        let fresh = tracks::track_csv(route);
        if bless() {
            std::fs::write(&path, &fresh).unwrap();
        }
        if std::fs::read_to_string(&path).ok().as_deref() != Some(fresh.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale demo tracks (rerun with PTTD_BLESS=1): {stale:?}"
    );
}

/// Reads a track file as a client replaying it would: `#` lines are comments.
fn read_track(path: &std::path::Path) -> Vec<(f64, GeoPoint)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("# seconds,lat,lon — "), "{header}");
    lines
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<f64> = l.split(',').map(|v| v.parse().unwrap()).collect();
            (f[0], GeoPoint::new(f[1], f[2]).unwrap())
        })
        .collect()
}

#[test]
fn demo_tracks_replay_past_three_compounds() {
    let dir = demo();
    for (i, route) in ROUTES.iter().enumerate() {
        let path = tracks_dir().join(format!("{}.csv", tracks::slug(route.name)));
        let track = read_track(&path);
        // A report every 10 s, at the patrol's speed, from the first waypoint to the last.
        let step = route.mode.speed_mps() * 10.0;
        for w in track.windows(2) {
            assert!(w[1].0 > w[0].0 && w[1].0 - w[0].0 <= 10.0);
            assert!(w[0].1.distance_m(w[1].1) <= step + 0.5, "{}", route.name);
        }
        let rule = route_group(&dir, i).patrol.unwrap();
        let passes = tracks::passes(&dir, &rule, &track);
        // Sampled every 10 s, the lead's nearest report is farther than the street's
        // 25 m, but always well inside the approach distance.
        eprintln!("{}", check_passes(route.name, &passes, rule.approach_m));
        let dense = tracks::passes(&dir, &rule, &tracks::dense(route, 1.0));
        let zones = |p: &[Pass]| p.iter().map(|p| p.zone).collect::<Vec<_>>();
        assert_eq!(zones(&passes), zones(&dense), "{}", route.name);
    }
}
