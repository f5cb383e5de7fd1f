//! Relay patrol's decision, without I/O: given where a patrol's lead is now, which
//! premises does the patrol pick up and which does it let go?
//!
//! The rule has two distances so a patrol standing on a boundary does not make guards
//! flap: a premises is picked up within `approach_m` of its edge and let go only beyond
//! `approach_m + hysteresis_m`. GPS fixes that jitter by less than the hysteresis around
//! the approach distance change nothing.

use std::collections::BTreeSet;

use ptt_directory::{Directory, GeoPoint, GroupId, GroupKind, PatrolRule, Shape, ZoneId, ZoneKind};

/// A compound's premises: the zone zone logic measures to, and the enterprise group whose
/// guards it moves.
#[derive(Debug, Clone)]
pub struct Premises {
    /// The zone.
    pub zone: ZoneId,
    /// Its outline.
    pub shape: Shape,
    /// The enterprise group.
    pub group: GroupId,
}

/// The premises of the directory: every enterprise group whose `zone` is a premises zone
/// with a shape, in group order.
pub fn premises_of(directory: &Directory) -> Vec<Premises> {
    directory
        .groups()
        .iter()
        .filter(|group| group.kind == GroupKind::Enterprise)
        .filter_map(|group| {
            let zone = directory.zone(group.zone?)?;
            let shape = zone.shape.clone()?;
            (zone.kind == ZoneKind::Premises).then_some(Premises {
                zone: zone.id,
                shape,
                group: group.id,
            })
        })
        .collect()
}

/// What changed for one patrol after a location report.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Premises let go, in zone id order (applied first).
    pub left: Vec<ZoneId>,
    /// Premises picked up, nearest first.
    pub entered: Vec<ZoneId>,
}

/// The premises one patrol has picked up.
#[derive(Debug, Default)]
pub struct PatrolTracker {
    near: BTreeSet<ZoneId>,
}

impl PatrolTracker {
    /// Moves the patrol's lead to `at` and returns what changed; the tracker then holds
    /// the new set.
    pub fn step(&mut self, premises: &[Premises], rule: &PatrolRule, at: GeoPoint) -> Step {
        let leave_beyond = rule.approach_m + rule.hysteresis_m;
        let mut step = Step::default();
        let mut entered = Vec::new();
        for place in premises {
            let distance = place.shape.distance_m(at);
            if self.near.contains(&place.zone) {
                if distance > leave_beyond {
                    step.left.push(place.zone);
                }
            } else if distance <= rule.approach_m {
                entered.push((distance, place.zone));
            }
        }
        entered.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        step.entered = entered.into_iter().map(|(_, zone)| zone).collect();
        step.left.sort_unstable();
        for zone in &step.left {
            self.near.remove(zone);
        }
        self.near.extend(step.entered.iter().copied());
        step
    }

    /// The premises picked up now.
    pub fn near(&self) -> &BTreeSet<ZoneId> {
        &self.near
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptt_directory::TerminalId;

    #[test]
    fn the_demo_district_has_a_premises_per_enterprise() {
        let directory = Directory::demo().expect("demo");
        let premises = premises_of(&directory);
        assert_eq!(premises.len(), 32);
        assert!(premises.iter().all(|p| p.zone.0 == p.group.0));
    }

    const METRES_PER_DEGREE: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;

    /// A point `east` metres along the equator-parallel line at 30° N.
    fn east(metres: f64) -> GeoPoint {
        GeoPoint {
            lat: 30.0,
            lon: 120.0 + metres / (METRES_PER_DEGREE * 30f64.to_radians().cos()),
        }
    }

    /// Three compounds of radius 50 m, 100 m north of the road, at 0, 500 and 1000 m.
    fn compounds() -> Vec<Premises> {
        (0..3)
            .map(|i| Premises {
                zone: ZoneId(101 + i),
                shape: Shape::Circle {
                    centre: GeoPoint {
                        lat: 30.0 + 100.0 / METRES_PER_DEGREE,
                        ..east(f64::from(i) * 500.0)
                    },
                    radius_m: 50.0,
                },
                group: GroupId(101 + i),
            })
            .collect()
    }

    const RULE: PatrolRule = PatrolRule {
        lead: TerminalId(201),
        approach_m: 60.0,
        hysteresis_m: 30.0,
    };

    #[test]
    fn a_patrol_picks_up_and_lets_go_in_order() {
        let premises = compounds();
        let mut tracker = PatrolTracker::default();
        let mut events = Vec::new();
        for metres in (-300..=1300).step_by(10) {
            let step = tracker.step(&premises, &RULE, east(f64::from(metres)));
            events.extend(step.left.iter().map(|z| format!("-{z}")));
            events.extend(step.entered.iter().map(|z| format!("+{z}")));
        }
        assert_eq!(
            events,
            ["+101", "-101", "+102", "-102", "+103", "-103"],
            "one pick-up and one let-go per compound, in order"
        );
    }

    #[test]
    fn jitter_on_the_boundary_does_not_flap() {
        let premises = compounds();
        let mut tracker = PatrolTracker::default();
        // The road passes 50 m from the compound's edge at its nearest; a lead standing
        // there, ±20 m of jitter (less than the 30 m hysteresis), changes nothing after
        // the first pick-up.
        let mut changes = 0;
        for k in 0..200 {
            let jitter = if k % 2 == 0 { 20.0 } else { -20.0 };
            let step = tracker.step(&premises, &RULE, east(jitter));
            changes += step.left.len() + step.entered.len();
        }
        assert_eq!(changes, 1);
        assert!(tracker.near().contains(&ZoneId(101)));
    }

    #[test]
    fn nothing_is_picked_up_beyond_the_approach_distance() {
        let premises = compounds();
        let mut tracker = PatrolTracker::default();
        // 300 m south of the road: 350 m from every compound's edge.
        let far = GeoPoint {
            lat: 30.0 - 300.0 / METRES_PER_DEGREE,
            ..east(0.0)
        };
        assert_eq!(tracker.step(&premises, &RULE, far), Step::default());
    }
}
