//! The geometry of the directory file: zone kinds and shapes, and the patrol rule of a
//! group. Checked here (their file form is in `schema.rs`) before the relay uses them,
//! because zone logic trusts them: a zone with a latitude of 300 or a radius of NaN would
//! silently never match.

use toml::Spanned;

use super::schema::{FileCircle, FileCorner, FileGroup, FileZone};
use super::validator::Validator;
use crate::{DirectoryError, GeoPoint, Membership, PatrolRule, Shape, TerminalId, ZoneKind};

/// Enter distance of a patrol rule when the file gives `lead` but no `approach-m`.
pub(crate) const DEFAULT_APPROACH_M: f64 = 50.0;
/// Extra leave distance when the file gives `lead` but no `hysteresis-m`.
pub(crate) const DEFAULT_HYSTERESIS_M: f64 = 25.0;

impl Validator<'_> {
    /// The kind and shape of a zone: at most one shape, coordinates in range, a radius
    /// above zero, three corners or more; premises must have a shape, since their whole
    /// purpose is to be found by location.
    pub(super) fn zone_geometry(
        &self,
        z: &FileZone,
    ) -> Result<(ZoneKind, Option<Shape>), DirectoryError> {
        let kind = z.kind.as_ref().map_or(ZoneKind::Area, |k| *k.get_ref());
        let shape = match (&z.circle, &z.polygon) {
            (Some(c), Some(p)) => {
                let (at, field) = if p.span().start > c.span().start {
                    (p.span().start, "zone.polygon")
                } else {
                    (c.span().start, "zone.circle")
                };
                let reason = "give either `circle` or `polygon`, not both".to_owned();
                return Err(self.err_at(at, field, reason));
            }
            (Some(c), None) => Some(self.circle(c.get_ref())?),
            (None, Some(p)) => Some(self.polygon(p)?),
            (None, None) => None,
        };
        // Only an explicit `kind` can say premises, so it is there to point at.
        if let Some(k) = &z.kind
            && kind == ZoneKind::Premises
            && shape.is_none()
        {
            let reason = "a premises zone needs a shape (`circle` or `polygon`): relay patrol \
                          and backup calls find premises by location"
                .to_owned();
            return Err(self.err(k, "zone.kind", reason));
        }
        Ok((kind, shape))
    }

    fn circle(&self, c: &FileCircle) -> Result<Shape, DirectoryError> {
        let lat = self.latitude(&c.lat, "zone.circle.lat")?;
        let lon = self.longitude(&c.lon, "zone.circle.lon")?;
        let radius_m = *c.radius_m.get_ref();
        if !(radius_m.is_finite() && radius_m > 0.0) {
            let reason = format!("must be a finite number of metres above zero, not {radius_m}");
            return Err(self.err(&c.radius_m, "zone.circle.radius-m", reason));
        }
        Ok(Shape::Circle {
            centre: GeoPoint { lat, lon },
            radius_m,
        })
    }

    fn polygon(&self, p: &Spanned<Vec<FileCorner>>) -> Result<Shape, DirectoryError> {
        let corners = p.get_ref();
        if corners.len() < 3 {
            let reason = format!(
                "a polygon needs at least 3 corners, this one has {}",
                corners.len()
            );
            return Err(self.err(p, "zone.polygon", reason));
        }
        let mut points = Vec::with_capacity(corners.len());
        for (i, corner) in corners.iter().enumerate() {
            let n = i + 1;
            let &[lat, lon] = corner.get_ref().as_slice() else {
                let reason = format!(
                    "corner {n} must be [lat, lon], not {} numbers",
                    corner.get_ref().len()
                );
                return Err(self.err(corner, "zone.polygon", reason));
            };
            let Some(point) = GeoPoint::new(lat, lon) else {
                let reason = if (-90.0..=90.0).contains(&lat) {
                    format!("corner {n}: longitude {lon} is out of range (-180 to 180)")
                } else {
                    format!("corner {n}: latitude {lat} is out of range (-90 to 90)")
                };
                return Err(self.err(corner, "zone.polygon", reason));
            };
            points.push(point);
        }
        Ok(Shape::Polygon(points))
    }

    fn latitude(&self, v: &Spanned<f64>, field: &'static str) -> Result<f64, DirectoryError> {
        let lat = *v.get_ref();
        if (-90.0..=90.0).contains(&lat) {
            Ok(lat)
        } else {
            Err(self.err(
                v,
                field,
                format!("latitude {lat} is out of range (-90 to 90)"),
            ))
        }
    }

    fn longitude(&self, v: &Spanned<f64>, field: &'static str) -> Result<f64, DirectoryError> {
        let lon = *v.get_ref();
        if (-180.0..=180.0).contains(&lon) {
            Ok(lon)
        } else {
            Err(self.err(
                v,
                field,
                format!("longitude {lon} is out of range (-180 to 180)"),
            ))
        }
    }

    /// A group's relay-patrol rule: present when `lead` is given; the lead must be a
    /// member that may talk (it is the patrol officer whose position moves the group);
    /// distances are finite and not negative. Distances without a lead are a mistake
    /// worth refusing: they would silently do nothing.
    pub(super) fn patrol(
        &self,
        g: &FileGroup,
        members: &[Membership],
    ) -> Result<Option<PatrolRule>, DirectoryError> {
        let id = *g.id.get_ref();
        let Some(lead) = &g.lead else {
            let stray = [
                (&g.approach_m, "group.approach-m"),
                (&g.hysteresis_m, "group.hysteresis-m"),
            ];
            if let Some((Some(v), field)) = stray.into_iter().find(|(v, _)| v.is_some()) {
                let reason = "has no effect without `lead`, the member whose location the \
                              patrol follows"
                    .to_owned();
                return Err(self.err(v, field, reason));
            }
            return Ok(None);
        };
        let tid = *lead.get_ref();
        match members.iter().find(|m| m.terminal.0 == tid) {
            None => {
                let reason = format!("terminal {tid} is not a member of group {id}");
                return Err(self.err(lead, "group.lead", reason));
            }
            Some(m) if !m.talk => {
                let reason =
                    format!("terminal {tid} may not talk in group {id}; a lead must be able to");
                return Err(self.err(lead, "group.lead", reason));
            }
            Some(_) => {}
        }
        Ok(Some(PatrolRule {
            lead: TerminalId(tid),
            approach_m: self.metres(&g.approach_m, "group.approach-m", DEFAULT_APPROACH_M)?,
            hysteresis_m: self.metres(
                &g.hysteresis_m,
                "group.hysteresis-m",
                DEFAULT_HYSTERESIS_M,
            )?,
        }))
    }

    fn metres(
        &self,
        v: &Option<Spanned<f64>>,
        field: &'static str,
        default: f64,
    ) -> Result<f64, DirectoryError> {
        match v {
            None => Ok(default),
            Some(m) if m.get_ref().is_finite() && *m.get_ref() >= 0.0 => Ok(*m.get_ref()),
            Some(m) => {
                let reason = format!(
                    "must be a finite number of metres, zero or more, not {}",
                    m.get_ref()
                );
                Err(self.err(m, field, reason))
            }
        }
    }
}
