//! Zone kinds and shapes, and patrol rules, in the directory file: what loads, what is
//! refused (with the line and field), and that they serialize back as they were written.

use super::*;
use crate::load::schema::FileDirectory;

fn geo_file(hash: &str) -> String {
    format!(
        r#"[[zone]]
id = 1
name = "Riverside"
polygon = [[30.24, 120.13], [30.24, 120.14], [30.25, 120.14]]

[[zone]]
id = 101
name = "Compound"
kind = "premises"
circle = {{ lat = 30.245, lon = 120.135, radius-m = 60 }}

[[zone]]
id = 201
name = "Road, leg 1"
kind = "route-segment"
polygon = [
  [30.2400, 120.13],
  [30.2404, 120.13],
  [30.2404, 120.15],
  [30.2400, 120.15],
]

[[zone]]
id = 41
name = "Market"
kind = "key-area"

[[terminal]]
id = 1
name = "Console 1"
role = "dispatcher"
secret-hash = "{hash}"

[[terminal]]
id = 201
name = "Patrol 201"
role = "patrol"
secret-hash = "{hash}"

[[terminal]]
id = 202
name = "Patrol 202"
role = "patrol"
secret-hash = "{hash}"

[[group]]
id = 31
name = "Trunk Road 1"
kind = "patrol-route"
route = [201]
lead = 201
approach-m = 60
hysteresis-m = 30.5
members = [{{ terminal = 1 }}, {{ terminal = 201 }}, {{ terminal = 202, talk = false }}]

[[group]]
id = 32
name = "Trunk Road 2"
kind = "patrol-route"
lead = 201
members = [{{ terminal = 201 }}]

[[group]]
id = 101
name = "Compound"
kind = "enterprise"
zone = 101
members = [{{ terminal = 1 }}]
"#
    )
}

/// The 1-based line of the first occurrence of `needle` (so the tests say which line
/// they mean instead of counting).
fn line_of(text: &str, needle: &str) -> usize {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in text"));
    text[..at].matches('\n').count() + 1
}

/// `text` with `from` replaced once, asserting it was there.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in text");
    text.replacen(from, to, 1)
}

/// Expects an `Invalid` error on the line holding `needle`, for `field`, whose message
/// contains `says`.
fn refused(text: &str, needle: &str, field: &str, says: &str) {
    let (line, got, shown) = invalid(text);
    assert_eq!((line, got), (line_of(text, needle), field), "{shown}");
    assert!(shown.contains(says), "{shown}");
    assert!(shown.starts_with(&format!("dir.toml:{line}:")), "{shown}");
}

#[test]
fn zones_with_shapes_and_a_patrol_rule_load() {
    let dir = Directory::from_toml_str(&geo_file(&hash()), "dir.toml").unwrap();
    let area = dir.zone(ZoneId(1)).unwrap();
    assert_eq!(area.kind, ZoneKind::Area, "kind defaults to area");
    let Some(Shape::Polygon(corners)) = &area.shape else {
        panic!("{area:?}")
    };
    assert_eq!(corners[1], GeoPoint::new(30.24, 120.14).unwrap());

    let premises = dir.zone(ZoneId(101)).unwrap();
    assert_eq!(premises.kind, ZoneKind::Premises);
    let shape = premises.shape.as_ref().unwrap();
    assert_eq!(
        *shape,
        Shape::Circle {
            centre: GeoPoint::new(30.245, 120.135).unwrap(),
            radius_m: 60.0
        }
    );
    // 0.001° of latitude is about 111 m: 51 m from the rim.
    let d = shape.distance_m(GeoPoint::new(30.246, 120.135).unwrap());
    assert!((d - 51.2).abs() < 0.5, "{d}");

    assert_eq!(dir.zone(ZoneId(201)).unwrap().kind, ZoneKind::RouteSegment);
    let key = dir.zone(ZoneId(41)).unwrap();
    assert_eq!((key.kind, &key.shape), (ZoneKind::KeyArea, &None));

    let g = dir.group(GroupId(31)).unwrap();
    assert_eq!(g.route, [ZoneId(201)]);
    assert_eq!(
        g.patrol,
        Some(PatrolRule {
            lead: TerminalId(201),
            approach_m: 60.0,
            hysteresis_m: 30.5
        })
    );
    let defaults = dir.group(GroupId(32)).unwrap().patrol.unwrap();
    assert_eq!((defaults.approach_m, defaults.hysteresis_m), (50.0, 25.0));
    assert_eq!(dir.group(GroupId(101)).unwrap().patrol, None);
}

#[test]
fn shapes_and_patrol_rules_serialize_back_as_written() {
    let text = geo_file(&hash());
    let file: FileDirectory = toml::from_str(&text).unwrap();
    let again = toml::to_string(&file).unwrap();
    // Absent stays absent: no kind for the area, no shape for the key area, no patrol
    // distances for group 32, no patrol at all for the enterprise.
    let zone_1 = &again[..again.find("id = 101").unwrap()];
    assert!(!zone_1.contains("kind"), "{again}");
    assert_eq!(again.matches("lead = 201").count(), 2, "{again}");
    assert_eq!(again.matches("approach-m").count(), 1, "{again}");
    assert!(again.contains("radius-m = 60.0"), "{again}");
    assert!(again.contains("kind = \"key-area\""), "{again}");

    let a = Directory::from_toml_str(&text, "a").unwrap();
    let b = Directory::from_toml_str(&again, "b").unwrap();
    assert_eq!(a.zones(), b.zones());
    assert_eq!(a.groups(), b.groups());
}

#[test]
fn coordinates_out_of_range_are_refused() {
    let text = geo_file(&hash());
    let t = edit(&text, "lat = 30.245", "lat = 95.0");
    refused(
        &t,
        "lat = 95.0",
        "zone.circle.lat",
        "latitude 95 is out of range",
    );
    let t = edit(&text, "lon = 120.135", "lon = -181");
    refused(
        &t,
        "lon = -181",
        "zone.circle.lon",
        "longitude -181 is out of range",
    );
    let t = edit(&text, "lat = 30.245", "lat = nan");
    refused(&t, "lat = nan", "zone.circle.lat", "latitude NaN");
    // A corner on a line of its own is named by that line.
    let t = edit(&text, "[30.2404, 120.13],", "[30.2404, 200.0],");
    refused(
        &t,
        "[30.2404, 200.0]",
        "zone.polygon",
        "corner 2: longitude 200 is out of range",
    );
    let t = edit(&text, "[30.2400, 120.15],", "[-91, 120.15],");
    refused(
        &t,
        "[-91, 120.15]",
        "zone.polygon",
        "corner 4: latitude -91",
    );
}

#[test]
fn bad_radius_is_refused() {
    let text = geo_file(&hash());
    for bad in ["0", "-5", "nan", "inf"] {
        let t = edit(&text, "radius-m = 60", &format!("radius-m = {bad}"));
        refused(
            &t,
            "radius-m =",
            "zone.circle.radius-m",
            "finite number of metres above zero",
        );
    }
}

#[test]
fn polygons_need_three_corners_of_two_numbers() {
    let text = geo_file(&hash());
    let t = edit(
        &text,
        "polygon = [[30.24, 120.13], [30.24, 120.14], [30.25, 120.14]]",
        "polygon = [[30.24, 120.13], [30.24, 120.14]]",
    );
    refused(
        &t,
        "polygon = [[30.24",
        "zone.polygon",
        "at least 3 corners, this one has 2",
    );
    let t = edit(&text, "[30.2404, 120.13],", "[30.2404, 120.13, 7],");
    refused(
        &t,
        "[30.2404, 120.13, 7]",
        "zone.polygon",
        "corner 2 must be [lat, lon], not 3 numbers",
    );
}

#[test]
fn one_shape_only_and_premises_need_one() {
    let text = geo_file(&hash());
    let t = edit(
        &text,
        "radius-m = 60 }\n",
        "radius-m = 60 }\npolygon = [[30.24, 120.13], [30.24, 120.14], [30.25, 120.14]]\n",
    );
    refused(
        &t,
        "polygon = [[30.24, 120.13], [30.24, 120.14], [30.25, 120.14]]\n\n[[zone]]\nid = 201",
        "zone.polygon",
        "either `circle` or `polygon`, not both",
    );
    let t = edit(
        &text,
        "circle = { lat = 30.245, lon = 120.135, radius-m = 60 }\n",
        "",
    );
    refused(
        &t,
        "kind = \"premises\"",
        "zone.kind",
        "a premises zone needs a shape",
    );
    // An unknown kind is a parse error naming the line and the choices.
    let t = edit(&text, "kind = \"key-area\"", "kind = \"park\"");
    let shown = Directory::from_toml_str(&t, "dir.toml")
        .unwrap_err()
        .to_string();
    let line = line_of(&t, "kind = \"park\"");
    assert!(shown.starts_with(&format!("dir.toml:{line}:")), "{shown}");
    assert!(shown.contains("key-area"), "{shown}");
}

#[test]
fn patrol_lead_must_be_a_talking_member() {
    let text = geo_file(&hash());
    let t = edit(&text, "lead = 201\napproach-m", "lead = 999\napproach-m");
    refused(
        &t,
        "lead = 999",
        "group.lead",
        "terminal 999 is not a member of group 31",
    );
    let t = edit(&text, "lead = 201\napproach-m", "lead = 202\napproach-m");
    refused(
        &t,
        "lead = 202",
        "group.lead",
        "terminal 202 may not talk in group 31",
    );
}

#[test]
fn patrol_distances_need_a_lead_and_sane_values() {
    let text = geo_file(&hash());
    let t = edit(&text, "lead = 201\napproach-m", "approach-m");
    refused(
        &t,
        "approach-m = 60",
        "group.approach-m",
        "no effect without `lead`",
    );
    let t = edit(&text, "lead = 201\napproach-m = 60\n", "");
    refused(
        &t,
        "hysteresis-m = 30.5",
        "group.hysteresis-m",
        "no effect without `lead`",
    );
    let t = edit(&text, "approach-m = 60", "approach-m = -1");
    refused(
        &t,
        "approach-m = -1",
        "group.approach-m",
        "finite number of metres, zero or more, not -1",
    );
    let t = edit(&text, "hysteresis-m = 30.5", "hysteresis-m = inf");
    refused(&t, "hysteresis-m = inf", "group.hysteresis-m", "not inf");
    // Zero is allowed: join only inside, leave as soon as outside.
    let t = edit(&text, "approach-m = 60", "approach-m = 0");
    let dir = Directory::from_toml_str(&t, "dir.toml").unwrap();
    assert_eq!(
        dir.group(GroupId(31)).unwrap().patrol.unwrap().approach_m,
        0.0
    );
}
