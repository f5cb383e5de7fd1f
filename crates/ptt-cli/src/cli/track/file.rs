//! GPS track files and positions along them.
//!
//! A track is CSV text, one point per line: `seconds,lat,lon` — seconds
//! since the start of the track (strictly increasing), then WGS-84 latitude
//! and longitude in degrees. `#` starts a comment (to the end of the line),
//! blank lines are skipped, and the first line may be a header
//! (`seconds,lat,lon` or any line with no number in it). A bad line is
//! reported with its number and field, so a hand-written track is quick to
//! fix.
//!
//! Between points the position is interpolated linearly in latitude and
//! longitude: exact enough over the few hundred metres between the points
//! of a patrol route (tracks crossing the 180° meridian are not supported).

use std::fmt;
use std::path::Path;

use anyhow::Context;

/// Mean Earth radius (IUGG), metres: for speeds and headings only.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A field of a track line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Seconds since the start.
    Seconds,
    /// Latitude, degrees.
    Lat,
    /// Longitude, degrees.
    Lon,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Seconds => "seconds",
            Self::Lat => "lat",
            Self::Lon => "lon",
        })
    }
}

/// Why a track could not be read; fix the line and field named.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrackError {
    /// A line has the wrong number of fields.
    #[error("line {line}: expected 3 fields `seconds,lat,lon`, found {found}")]
    Fields {
        /// 1-based line number.
        line: usize,
        /// Fields found.
        found: usize,
    },
    /// A field is not a number, out of range, or not after the previous
    /// point.
    #[error("line {line}, field `{field}`: {reason}")]
    Value {
        /// 1-based line number.
        line: usize,
        /// The field.
        field: Field,
        /// What is wrong with it.
        reason: String,
    },
    /// No point at all (only comments, blank lines or a header).
    #[error("no points: write one `seconds,lat,lon` line per point")]
    Empty,
}

/// One point of a track.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Seconds since the start of the track.
    pub seconds: f64,
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
}

/// A position on the track, with the course and speed of the segment it
/// lies on (none for a track of one point).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Course over ground, degrees clockwise from north.
    pub heading_deg: Option<f32>,
    /// Ground speed, m/s.
    pub speed_mps: Option<f32>,
}

/// A parsed track: at least one point, times strictly increasing.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    points: Vec<Point>,
}

impl Track {
    /// Reads a track file; errors name the file, line and field.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            // The demo's tracks are in the repository (docs/tracks/): say
            // where a relative path was looked for.
            let here = std::env::current_dir()
                .ok()
                .filter(|_| path.is_relative())
                .map(|dir| {
                    format!(
                        " (looked for in {}; give the full path, or run from the repository's folder)",
                        dir.display()
                    )
                })
                .unwrap_or_default();
            format!("{}: cannot read the track{here}", path.display())
        })?;
        Self::parse(&text).with_context(|| format!("track {}", path.display()))
    }

    /// Parses track text (see the module docs for the format).
    pub fn parse(text: &str) -> Result<Self, TrackError> {
        let mut points: Vec<Point> = Vec::new();
        let mut header_allowed = true;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let fields: Vec<&str> = content.split(',').map(str::trim).collect();
            let is_header = header_allowed && fields.iter().all(|f| f.parse::<f64>().is_err());
            header_allowed = false;
            if is_header {
                continue;
            }
            if fields.len() != 3 {
                return Err(TrackError::Fields {
                    line,
                    found: fields.len(),
                });
            }
            let point = Point {
                seconds: number(line, Field::Seconds, fields[0], 0.0, f64::MAX)?,
                lat: number(line, Field::Lat, fields[1], -90.0, 90.0)?,
                lon: number(line, Field::Lon, fields[2], -180.0, 180.0)?,
            };
            if let Some(previous) = points.last()
                && point.seconds <= previous.seconds
            {
                return Err(TrackError::Value {
                    line,
                    field: Field::Seconds,
                    reason: format!(
                        "{} is not after the previous point's {}",
                        fields[0], previous.seconds
                    ),
                });
            }
            points.push(point);
        }
        if points.is_empty() {
            return Err(TrackError::Empty);
        }
        Ok(Self { points })
    }

    /// The points, in time order.
    #[must_use]
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// Seconds from the first point to the last.
    #[must_use]
    pub fn duration(&self) -> f64 {
        self.last().seconds - self.first().seconds
    }

    fn first(&self) -> &Point {
        &self.points[0]
    }

    fn last(&self) -> &Point {
        &self.points[self.points.len() - 1]
    }

    /// The position `elapsed` seconds after the first point, interpolated
    /// between the points around it; before the start it is the first
    /// point, after the end the last.
    #[must_use]
    pub fn at(&self, elapsed: f64) -> Fix {
        let t = self.first().seconds + elapsed.clamp(0.0, self.duration());
        // The segment [a, b] holding t: b is the first point at or after t.
        let next = self
            .points
            .partition_point(|p| p.seconds < t)
            .clamp(1, self.points.len().max(2) - 1);
        let Some(b) = self.points.get(next) else {
            let only = self.first();
            return Fix {
                lat: only.lat,
                lon: only.lon,
                heading_deg: None,
                speed_mps: None,
            };
        };
        let a = &self.points[next - 1];
        let f = ((t - a.seconds) / (b.seconds - a.seconds)).clamp(0.0, 1.0);
        let metres = distance_m(a, b);
        Fix {
            lat: lerp(a.lat, b.lat, f),
            lon: lerp(a.lon, b.lon, f),
            heading_deg: (metres > 0.0).then(|| bearing_deg(a, b) as f32),
            speed_mps: Some((metres / (b.seconds - a.seconds)) as f32),
        }
    }
}

/// The value a fraction `f` of the way from `a` to `b`; exactly `b` at the
/// end, so a replay ends on the track's last point to the last digit.
fn lerp(a: f64, b: f64, f: f64) -> f64 {
    if f >= 1.0 { b } else { a + f * (b - a) }
}

/// Parses one numeric field and checks its range.
fn number(line: usize, field: Field, text: &str, min: f64, max: f64) -> Result<f64, TrackError> {
    let bad = |reason: String| TrackError::Value {
        line,
        field,
        reason,
    };
    let value: f64 = text
        .parse()
        .map_err(|_| bad(format!("{text:?} is not a number")))?;
    if !value.is_finite() {
        return Err(bad(format!("{text} is not a finite number")));
    }
    if value < min || value > max {
        return Err(bad(if max == f64::MAX {
            format!("{text} is negative")
        } else {
            format!("{text} is outside {min}..{max}")
        }));
    }
    Ok(value)
}

/// Great-circle distance (haversine), metres.
fn distance_m(a: &Point, b: &Point) -> f64 {
    let (la, lb) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = lb - la;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la.cos() * lb.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// Initial bearing from `a` to `b`, degrees clockwise from north, 0..360.
fn bearing_deg(a: &Point, b: &Point) -> f64 {
    let (la, lb) = (a.lat.to_radians(), b.lat.to_radians());
    let dlon = (b.lon - a.lon).to_radians();
    let y = dlon.sin() * lb.cos();
    let x = la.cos() * lb.sin() - la.sin() * lb.cos() * dlon.cos();
    y.atan2(x).to_degrees().rem_euclid(360.0)
}

#[cfg(test)]
mod tests {
    use crate::cli::track::file::*;

    const TRACK: &str = "\
# Patrol 3 along the river
seconds,lat,lon
0, 31.2000, 121.4000
10,31.2010,121.4000   # north, ~111 m in 10 s
30,31.2010,121.4020   # then east
";

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn parses_points_with_comments_and_a_header() {
        let track = Track::parse(TRACK).expect("track");
        assert_eq!(track.points().len(), 3);
        assert_eq!(track.duration(), 30.0);
        assert_eq!(
            track.points()[1],
            Point {
                seconds: 10.0,
                lat: 31.201,
                lon: 121.4
            }
        );
    }

    #[test]
    fn interpolates_linearly_and_clamps_at_both_ends() {
        let track = Track::parse(TRACK).expect("track");
        let start = track.at(-5.0);
        assert!(close(start.lat, 31.2) && close(start.lon, 121.4));
        let half = track.at(5.0);
        assert!(
            close(half.lat, 31.2005) && close(half.lon, 121.4),
            "{half:?}"
        );
        let on_point = track.at(10.0);
        assert!(close(on_point.lat, 31.201) && close(on_point.lon, 121.4));
        let quarter = track.at(15.0);
        assert!(close(quarter.lat, 31.201) && close(quarter.lon, 121.4005));
        let end = track.at(99.0);
        assert!(close(end.lat, 31.201) && close(end.lon, 121.402));
    }

    #[test]
    fn course_and_speed_come_from_the_segment() {
        let track = Track::parse(TRACK).expect("track");
        let north = track.at(3.0);
        let heading = north.heading_deg.expect("heading");
        assert!(!(0.01..=359.99).contains(&heading), "{heading}");
        let speed = north.speed_mps.expect("speed");
        assert!((speed - 11.12).abs() < 0.05, "{speed}"); // 0.001° lat = 111.2 m
        let east = track.at(20.0);
        assert!((east.heading_deg.expect("heading") - 90.0).abs() < 0.01);
    }

    #[test]
    fn a_single_point_is_a_standing_position() {
        let track = Track::parse("5,31.2,121.4\n").expect("track");
        assert_eq!(track.duration(), 0.0);
        let fix = track.at(3.0);
        assert!(close(fix.lat, 31.2) && fix.speed_mps.is_none() && fix.heading_deg.is_none());
    }

    #[test]
    fn bad_lines_name_their_line_and_field() {
        let cases: [(&str, TrackError); 6] = [
            (
                "0,31.2,121.4\n# fine\n\n10,31.3\n",
                TrackError::Fields { line: 4, found: 2 },
            ),
            (
                "0,31.2,121.4\n10,north,121.4\n",
                TrackError::Value {
                    line: 2,
                    field: Field::Lat,
                    reason: "\"north\" is not a number".into(),
                },
            ),
            (
                "0,91,121.4\n",
                TrackError::Value {
                    line: 1,
                    field: Field::Lat,
                    reason: "91 is outside -90..90".into(),
                },
            ),
            (
                "t,lat,lon\n0,31.2,181\n",
                TrackError::Value {
                    line: 2,
                    field: Field::Lon,
                    reason: "181 is outside -180..180".into(),
                },
            ),
            (
                "0,31.2,121.4\n10,31.2,121.4\n10,31.3,121.4\n",
                TrackError::Value {
                    line: 3,
                    field: Field::Seconds,
                    reason: "10 is not after the previous point's 10".into(),
                },
            ),
            ("# nothing\nseconds,lat,lon\n", TrackError::Empty),
        ];
        for (text, expected) in cases {
            assert_eq!(Track::parse(text), Err(expected), "{text:?}");
        }
        // Only the first line may be a header; NaN and negative times are
        // refused like any other bad value.
        assert!(matches!(
            Track::parse("0,31.2,121.4\nseconds,lat,lon\n"),
            Err(TrackError::Value {
                line: 2,
                field: Field::Seconds,
                ..
            })
        ));
        assert!(matches!(
            Track::parse("NaN,31.2,121.4\n"),
            Err(TrackError::Value {
                line: 1,
                field: Field::Seconds,
                ..
            })
        ));
        assert!(matches!(
            Track::parse("-1,31.2,121.4\n"),
            Err(TrackError::Value {
                line: 1,
                field: Field::Seconds,
                ..
            })
        ));
        let message = Track::parse("0,31.2,121.4\n10,north,121.4\n")
            .expect_err("bad")
            .to_string();
        assert_eq!(message, "line 2, field `lat`: \"north\" is not a number");
    }
}
