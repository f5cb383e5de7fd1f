//! The demo district's zones, built from the map in `geography.rs`: areas, key areas,
//! premises and the route segments of every route, in that order.

use super::catalogue::{
    ENTERPRISES, FIRST_ENTERPRISE, FIRST_KEY_AREA_ZONE, FIRST_SEGMENT_ZONE, ZONES,
};
use super::geography::{AREAS, KEY_AREAS, PREMISES, ROUTES, at, corridor};
use crate::load::schema::{FileCircle, FileCorner, FileZone, sp};
use crate::{GeoPoint, ZoneKind};

fn corners(points: impl IntoIterator<Item = GeoPoint>) -> Option<toml::Spanned<Vec<FileCorner>>> {
    Some(sp(points
        .into_iter()
        .map(|p| sp(vec![p.lat, p.lon]))
        .collect()))
}

fn zone(id: u32, name: String, kind: ZoneKind) -> FileZone {
    FileZone {
        id: sp(id),
        name: sp(name),
        kind: Some(sp(kind)),
        neighbours: Vec::new(),
        polygon: None,
        circle: None,
    }
}

/// The zones: areas, key areas, premises, then the route segments of every route; returns
/// each route's segment ids too.
pub(super) fn zones() -> (Vec<FileZone>, Vec<Vec<u32>>) {
    let mut zones = Vec::new();
    for (i, (name, outline)) in ZONES.iter().zip(AREAS).enumerate() {
        let id = i as u32 + 1;
        let mut z = zone(id, (*name).to_owned(), ZoneKind::Area);
        z.neighbours = vec![sp((id + 6) % 8 + 1), sp(id % 8 + 1)];
        z.polygon = corners(outline.iter().map(|&xy| at(xy)));
        zones.push(z);
    }
    for (i, (name, _, outline)) in KEY_AREAS.iter().enumerate() {
        let mut z = zone(
            FIRST_KEY_AREA_ZONE + i as u32,
            (*name).to_owned(),
            ZoneKind::KeyArea,
        );
        z.polygon = corners(outline.iter().map(|&xy| at(xy)));
        zones.push(z);
    }
    for (i, (name, &(centre, radius))) in ENTERPRISES.iter().zip(&PREMISES).enumerate() {
        let mut z = zone(
            FIRST_ENTERPRISE + i as u32,
            (*name).to_owned(),
            ZoneKind::Premises,
        );
        let c = at(centre);
        z.circle = Some(sp(FileCircle {
            lat: sp(c.lat),
            lon: sp(c.lon),
            radius_m: sp(f64::from(radius)),
        }));
        zones.push(z);
    }
    let mut next = FIRST_SEGMENT_ZONE;
    let mut segments = Vec::new();
    for route in &ROUTES {
        let legs = route.waypoints.len() - 1;
        let ids: Vec<u32> = (next..next + legs as u32).collect();
        next += legs as u32;
        for (k, leg) in route.waypoints.windows(2).enumerate() {
            let name = format!("{}, leg {} of {legs}", route.name, k + 1);
            let mut z = zone(ids[k], name, ZoneKind::RouteSegment);
            let before = k.checked_sub(1).map(|j| ids[j]);
            z.neighbours = before
                .into_iter()
                .chain(ids.get(k + 1).copied())
                .map(sp)
                .collect();
            z.polygon = corners(corridor(leg[0], leg[1]));
            zones.push(z);
        }
        segments.push(ids);
    }
    (zones, segments)
}
