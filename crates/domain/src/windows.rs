//! Maintenance windows: weekly times, in a time zone, when workers may apply an environment's runs.
//!
//! A window is written `DAYS HH:MM-HH:MM ZONE`: `Sat 02:00-05:00 Europe/Berlin`, `Mon-Fri 22:00-02:00 UTC`
//! (an end at or before the start runs past midnight into the next day), `daily 00:00-24:00 UTC`. Days are
//! `Mon`…`Sun`, lists (`Sat,Sun`) and ranges (`Fri-Mon` wraps). The zone is checked against the tool
//! database's time zone names when saved; the database evaluates the windows (`maintenance_window_*`
//! functions), so the rules live in one place next to the claims that obey them.

use std::fmt;

/// Most windows (lines) per environment.
pub const MAX_WINDOWS: usize = 50;

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// One window as read: its ISO weekdays (1 Monday … 7 Sunday), its start and end in minutes of the day
/// (the end 1 to 1440; at or before the start: the next day), and its zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub weekdays: Vec<u8>,
    pub start: u16,
    pub end: u16,
    pub timezone: String,
}

/// A window line that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowProblem {
    #[error(
        "cannot read window {0:?}: write DAYS HH:MM-HH:MM ZONE, e.g. \"Sat 02:00-05:00 Europe/Berlin\" or \
         \"Mon-Fri 22:00-02:00 UTC\""
    )]
    Syntax(String),
    #[error("window {line:?}: unknown day {day:?} (Mon, Tue, Wed, Thu, Fri, Sat, Sun, or daily)")]
    Day { line: String, day: String },
    #[error("window {line:?}: {time:?} is not a time of day (00:00 to 24:00)")]
    Time { line: String, time: String },
    #[error("window {0:?} starts when it ends; for a whole day write 00:00-24:00")]
    Empty(String),
    #[error("window {line:?}: {zone:?} is not a time zone name (e.g. Europe/Berlin, UTC)")]
    Zone { line: String, zone: String },
    #[error("at most {MAX_WINDOWS} windows per environment")]
    TooMany,
}

impl Window {
    /// Reads one line.
    pub fn parse(line: &str) -> Result<Window, WindowProblem> {
        let line = line.trim();
        let syntax = || WindowProblem::Syntax(line.to_owned());
        let mut parts = line.split_whitespace();
        let (Some(days), Some(times), Some(zone), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(syntax());
        };
        let weekdays = weekdays(line, days)?;
        let (start, end) = times.split_once('-').ok_or_else(syntax)?;
        let minutes = |text: &str| {
            minute_of_day(text).ok_or_else(|| WindowProblem::Time { line: line.to_owned(), time: text.to_owned() })
        };
        let (start, end) = (minutes(start)?, minutes(end)?);
        if start == 1440 {
            return Err(WindowProblem::Time { line: line.to_owned(), time: "24:00".into() });
        }
        if start == end || (start == 0 && end == 0) {
            return Err(WindowProblem::Empty(line.to_owned()));
        }
        let zone_ok = !zone.is_empty()
            && zone.len() <= 64
            && zone.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '+' | '-'));
        if !zone_ok {
            return Err(WindowProblem::Zone { line: line.to_owned(), zone: zone.to_owned() });
        }
        Ok(Window { weekdays, start, end, timezone: zone.to_owned() })
    }

    /// `HH:MM` of a minute of the day.
    pub fn clock(minute: u16) -> String {
        format!("{:02}:{:02}", minute / 60, minute % 60)
    }
}

impl fmt::Display for Window {
    /// The canonical line: `Sat,Sun 02:00-05:00 Europe/Berlin`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days: Vec<&str> = self.weekdays.iter().map(|d| DAYS[usize::from(*d - 1)]).collect();
        write!(f, "{} {}-{} {}", days.join(","), Window::clock(self.start), Window::clock(self.end), self.timezone)
    }
}

/// Reads every non-empty line of `text` (at most [`MAX_WINDOWS`]).
pub fn parse_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<Vec<Window>, WindowProblem> {
    let windows: Vec<Window> =
        lines.into_iter().map(str::trim).filter(|l| !l.is_empty()).map(Window::parse).collect::<Result<_, _>>()?;
    if windows.len() > MAX_WINDOWS {
        return Err(WindowProblem::TooMany);
    }
    Ok(windows)
}

fn minute_of_day(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn weekdays(line: &str, text: &str) -> Result<Vec<u8>, WindowProblem> {
    if text.eq_ignore_ascii_case("daily") {
        return Ok((1..=7).collect());
    }
    let day = |name: &str| -> Result<u8, WindowProblem> {
        DAYS.iter()
            .position(|d| d.eq_ignore_ascii_case(name))
            .map(|i| i as u8 + 1)
            .ok_or_else(|| WindowProblem::Day { line: line.to_owned(), day: name.to_owned() })
    };
    let mut days = Vec::new();
    for part in text.split(',') {
        match part.split_once('-') {
            Some((from, to)) => {
                let (mut d, to) = (day(from)?, day(to)?);
                loop {
                    days.push(d);
                    if d == to {
                        break;
                    }
                    d = d % 7 + 1;
                }
            }
            None => days.push(day(part)?),
        }
    }
    days.sort_unstable();
    days.dedup();
    Ok(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weekly_window_in_a_zone() {
        let w = Window::parse("Sat 02:00-05:00 Europe/Berlin").unwrap();
        assert_eq!(w, Window { weekdays: vec![6], start: 120, end: 300, timezone: "Europe/Berlin".into() });
        assert_eq!(w.to_string(), "Sat 02:00-05:00 Europe/Berlin");
    }

    #[test]
    fn days_are_lists_ranges_that_may_wrap_or_daily() {
        assert_eq!(Window::parse("Mon-Fri 22:00-02:00 UTC").unwrap().weekdays, vec![1, 2, 3, 4, 5]);
        assert_eq!(Window::parse("fri-mon 22:00-02:00 UTC").unwrap().weekdays, vec![1, 5, 6, 7]);
        assert_eq!(Window::parse("Sat,Sun 00:00-24:00 UTC").unwrap().weekdays, vec![6, 7]);
        assert_eq!(Window::parse("daily 01:00-02:00 UTC").unwrap().weekdays, vec![1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(Window::parse("Sat,Sun 00:00-24:00 UTC").unwrap().to_string(), "Sat,Sun 00:00-24:00 UTC");
    }

    #[test]
    fn bad_lines_say_what_to_write() {
        assert!(matches!(Window::parse("Sat 02:00 Europe/Berlin"), Err(WindowProblem::Syntax(_))));
        assert!(matches!(Window::parse("Sat 02:00-05:00"), Err(WindowProblem::Syntax(_))));
        assert!(matches!(Window::parse("Sam 02:00-05:00 UTC"), Err(WindowProblem::Day { .. })));
        assert!(matches!(Window::parse("Sat 2:00-05:00 UTC"), Err(WindowProblem::Time { .. })));
        assert!(matches!(Window::parse("Sat 02:00-24:30 UTC"), Err(WindowProblem::Time { .. })));
        assert!(matches!(Window::parse("Sat 24:00-02:00 UTC"), Err(WindowProblem::Time { .. })));
        assert!(matches!(Window::parse("Sat 02:00-02:00 UTC"), Err(WindowProblem::Empty(_))));
        assert!(matches!(Window::parse("Sat 02:00-05:00 Europe/Ber lin"), Err(WindowProblem::Syntax(_))));
        assert!(matches!(Window::parse("Sat 02:00-05:00 'x'"), Err(WindowProblem::Zone { .. })));
        let many: Vec<String> = (0..=MAX_WINDOWS).map(|_| "Sat 02:00-05:00 UTC".to_owned()).collect();
        assert_eq!(parse_lines(many.iter().map(String::as_str)), Err(WindowProblem::TooMany));
        assert_eq!(parse_lines(["", "  "]).unwrap(), Vec::new());
    }
}
