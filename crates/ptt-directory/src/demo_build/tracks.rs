//! Demo GPS tracks: a patrol's lead on each route, a position every 10 s at a patrol's
//! speed, written to `docs/tracks/<route>.csv` for `ptt` to replay; and the compounds a
//! lead passes, worked out the way relay patrol does, for the doc and the tests.

use std::fmt::Write as _;

use super::geography::{Route, along, length_m};
use crate::{Directory, GeoPoint, PatrolRule, ZoneId, ZoneKind};

/// Seconds between two positions of a track (a handheld's usual GPS report interval).
pub(crate) const TRACK_INTERVAL_S: u32 = 10;

/// The file name of a route's track, without `.csv`: "Trunk Road 1" → "trunk-road-1".
pub(crate) fn slug(name: &str) -> String {
    let mut s = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    s.trim_matches('-').to_owned()
}

/// Positions along the route every `TRACK_INTERVAL_S` seconds at the route's speed, and
/// the last waypoint at the first whole second the patrol can be there.
pub(crate) fn track(route: &Route) -> Vec<(u32, GeoPoint)> {
    let speed = route.mode.speed_mps();
    let length = length_m(route.waypoints);
    let mut points = Vec::new();
    let mut t = 0u32;
    while f64::from(t) * speed < length {
        points.push((t, along(route.waypoints, f64::from(t) * speed)));
        t += TRACK_INTERVAL_S;
    }
    let end = (length / speed).ceil() as u32;
    points.push((end, along(route.waypoints, length)));
    points
}

/// The track as `docs/tracks/<slug>.csv`: a comment line, then `seconds,lat,lon` lines.
pub(crate) fn track_csv(route: &Route) -> String {
    let mut s = format!(
        "# seconds,lat,lon — {}, {}\n",
        route.name,
        route.mode.label()
    );
    for (t, p) in track(route) {
        let _ = writeln!(s, "{t},{:.6},{:.6}", p.lat, p.lon);
    }
    s
}

/// Positions along the route every `step_m` metres, timed at the route's speed: dense
/// enough to find how close a route really comes to a compound.
pub(crate) fn dense(route: &Route, step_m: f64) -> Vec<(f64, GeoPoint)> {
    let length = length_m(route.waypoints);
    let speed = route.mode.speed_mps();
    let steps = (length / step_m).ceil() as usize;
    (0..=steps)
        .map(|i| {
            let d = (i as f64 * step_m).min(length);
            (d / speed, along(route.waypoints, d))
        })
        .collect()
}

/// One compound a patrol passed: when its guards joined and left the patrol group, and
/// how close the lead came to the premises' edge while they were in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pass {
    /// The premises zone.
    pub(crate) zone: ZoneId,
    /// Seconds into the track when the lead came within `approach_m`.
    pub(crate) joined_s: f64,
    /// Seconds into the track when it was more than `approach_m + hysteresis_m` away;
    /// `None` if the track ended first.
    pub(crate) left_s: Option<f64>,
    /// The nearest the lead came to the premises' edge, metres.
    pub(crate) closest_m: f64,
}

/// Replays the lead's positions against every premises zone of the directory with the
/// patrol rule's enter and leave distances, as relay patrol does; passes in join order.
pub(crate) fn passes(dir: &Directory, rule: &PatrolRule, track: &[(f64, GeoPoint)]) -> Vec<Pass> {
    let premises: Vec<_> = dir
        .zones()
        .iter()
        .filter(|z| z.kind == ZoneKind::Premises)
        .filter_map(|z| z.shape.as_ref().map(|s| (z.id, s)))
        .collect();
    let mut out: Vec<Pass> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    for &(t, position) in track {
        for &(zone, shape) in &premises {
            let d = shape.distance_m(position);
            match open.iter().position(|&i| out[i].zone == zone) {
                Some(k) => {
                    let pass = &mut out[open[k]];
                    pass.closest_m = pass.closest_m.min(d);
                    if d > rule.approach_m + rule.hysteresis_m {
                        pass.left_s = Some(t);
                        open.swap_remove(k);
                    }
                }
                None if d <= rule.approach_m => {
                    open.push(out.len());
                    out.push(Pass {
                        zone,
                        joined_s: t,
                        left_s: None,
                        closest_m: d,
                    });
                }
                None => {}
            }
        }
    }
    out
}
