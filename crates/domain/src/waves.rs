//! Waves: a run over a db set that rolls out in stages, canaries first.
//!
//! - **Plan.** A request names its waves as cumulative reach over the set's targets in their stable order
//!   (`{"targets": 1}`, `{"percent": 10}`, `{"percent": 100}`): wave *n* holds the targets past wave *n-1*'s
//!   reach up to its own. The last must reach every target. A wave left empty by a small set (10 % of 5 is
//!   1, which the canary already holds) is dropped, so every planned wave has targets ([`plan`]).
//! - **Order.** Targets are taken by name, or those carrying a label first ([`LabelMatch`]).
//! - **Progress.** A wave starts only when the previous one ended with no more failures than it allows:
//!   by itself (`advance: auto`) or when someone the environment lets execute runs continues it (`manual`).
//!   A wave over its `max_failures` halts the run: nothing more is claimed (items already running finish),
//!   and a person continues it (the failures so far are then tolerated) or cancels it.
//!
//! The queue keeps what claims need on the run's row (the current wave's end, its open items, its failures
//! and how many it tolerates), so a claim or an item's ending reads no wave table.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error_code::ErrorCode;

/// Most waves one run may have.
pub const MAX_WAVES: usize = 20;

closed_enum! {
    /// How a run's next wave starts once the previous one ended within its failure budget.
    pub enum Advance as "wave advance" {
        /// By itself.
        Auto = "auto",
        /// When someone the environment lets execute runs presses Continue.
        Manual = "manual",
    }
}

impl Default for Advance {
    /// A run whose waves were approved rolls on by itself: a person is needed only when one halts it.
    fn default() -> Self {
        Self::Auto
    }
}

/// One wave as requested: how far it reaches (exactly one of `targets` and `percent`) and how many of its
/// targets may fail before the run halts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WaveSpec {
    /// Reach this many targets in all (counting earlier waves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<u32>,
    /// Reach this share of the set's targets in all, 1 to 100 (rounded up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u32>,
    /// Failed targets this wave tolerates (default 0: the first failure halts the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<u32>,
}

impl fmt::Display for WaveSpec {
    /// The short form the web form takes: `1`, `10%`, `100%:2` (reach, then `:max_failures` when set).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.targets, self.percent) {
            (Some(n), _) => write!(f, "{n}")?,
            (None, Some(p)) => write!(f, "{p}%")?,
            (None, None) => f.write_str("?")?,
        }
        if let Some(m) = self.max_failures {
            write!(f, ":{m}")?;
        }
        Ok(())
    }
}

/// A wave plan that cannot be used, with what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaveProblem {
    #[error("a run with waves needs at least 2 of them and at most {MAX_WAVES}; it has {0}")]
    Count(usize),
    #[error("wave {wave} must give exactly one of \"targets\" and \"percent\"")]
    Reach { wave: usize },
    #[error("wave {wave}: \"targets\" must be at least 1")]
    ZeroTargets { wave: usize },
    #[error("wave {wave}: \"percent\" must be between 1 and 100, not {percent}")]
    Percent { wave: usize, percent: u32 },
    #[error("wave {wave} reaches {reach} targets, fewer than wave {earlier} before it ({earlier_reach})")]
    Shrinks { wave: usize, reach: u32, earlier: usize, earlier_reach: u32 },
    #[error("the last wave must reach every target (\"percent\": 100); it reaches {reach} of {total}")]
    LastShort { reach: u32, total: u32 },
    #[error("waves are for a db set; a run for one target has no stages")]
    OneTarget,
    #[error("cannot read wave {0:?}: write a count of targets (1), a share (10%), each optionally with :max_failures")]
    Syntax(String),
    #[error("label {0:?} must be key=value, the key 1 to 100 characters")]
    Label(String),
}

impl WaveProblem {
    /// The API's code for it.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::InvalidWaves
    }
}

/// Targets carrying this label (`key=value`, compared as text with the label's value) go first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMatch {
    pub key: String,
    pub value: String,
}

impl LabelMatch {
    /// Reads `key=value`.
    pub fn parse(text: &str) -> Result<LabelMatch, WaveProblem> {
        let (key, value) = text.split_once('=').ok_or_else(|| WaveProblem::Label(text.to_owned()))?;
        let key = key.trim();
        if key.is_empty() || key.chars().count() > 100 || value.chars().count() > 200 {
            return Err(WaveProblem::Label(text.to_owned()));
        }
        Ok(LabelMatch { key: key.to_owned(), value: value.trim().to_owned() })
    }
}

impl fmt::Display for LabelMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// One wave of a plan: the items whose ordinal is in `first..end` (in the run's stable target order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedWave {
    pub first: u32,
    pub end: u32,
    /// The request's words for it (`1 target`, `10%`, `100%`).
    pub spec: String,
    pub max_failures: u32,
}

impl PlannedWave {
    /// How many targets it holds.
    pub fn size(&self) -> u32 {
        self.end - self.first
    }
}

/// Reads the short form of a plan: `1, 10%, 100%`, each optionally with `:max_failures` (`10%:2`).
pub fn parse_list(text: &str) -> Result<Vec<WaveSpec>, WaveProblem> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let bad = || WaveProblem::Syntax(part.to_owned());
            let (reach, max) = match part.split_once(':') {
                Some((reach, max)) => (reach.trim(), Some(max.trim().parse::<u32>().map_err(|_| bad())?)),
                None => (part, None),
            };
            let spec = match reach.strip_suffix('%') {
                Some(p) => WaveSpec { percent: Some(p.trim().parse().map_err(|_| bad())?), ..WaveSpec::default() },
                None => WaveSpec { targets: Some(reach.parse().map_err(|_| bad())?), ..WaveSpec::default() },
            };
            Ok(WaveSpec { max_failures: max, ..spec })
        })
        .collect()
}

/// The short form of a plan, as [`parse_list`] reads it.
pub fn format_list(specs: &[WaveSpec]) -> String {
    specs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Resolves `specs` over a set of `total` targets into waves of consecutive ordinals, dropping waves
/// that would be empty. Refuses fewer than 2 or more than [`MAX_WAVES`] entries, an entry without
/// exactly one reach, a reach that shrinks, and a last wave that does not reach every target.
pub fn plan(specs: &[WaveSpec], total: u32) -> Result<Vec<PlannedWave>, WaveProblem> {
    if !(2..=MAX_WAVES).contains(&specs.len()) {
        return Err(WaveProblem::Count(specs.len()));
    }
    let mut reaches = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let wave = i + 1;
        let reach = match (spec.targets, spec.percent) {
            (Some(0), None) => return Err(WaveProblem::ZeroTargets { wave }),
            (Some(n), None) => n.min(total),
            (None, Some(p)) if (1..=100).contains(&p) => {
                // Rounded up, so 10 % of 5 targets is 1, never 0.
                u32::try_from((u64::from(p) * u64::from(total)).div_ceil(100)).unwrap_or(total)
            }
            (None, Some(percent)) => return Err(WaveProblem::Percent { wave, percent }),
            _ => return Err(WaveProblem::Reach { wave }),
        };
        if let Some(&(earlier, earlier_reach)) = reaches.last()
            && reach < earlier_reach
        {
            return Err(WaveProblem::Shrinks { wave, reach, earlier, earlier_reach });
        }
        reaches.push((wave, reach));
    }
    let last = reaches.last().map_or(0, |&(_, reach)| reach);
    if last < total || total == 0 {
        return Err(WaveProblem::LastShort { reach: last, total });
    }
    let mut waves: Vec<PlannedWave> = Vec::new();
    let mut first = 0;
    for (spec, &(_, reach)) in specs.iter().zip(&reaches) {
        if reach == first {
            continue;
        }
        let words = match (spec.targets, spec.percent) {
            (Some(1), _) => "1 target".to_owned(),
            (Some(n), _) => format!("{n} targets"),
            (_, Some(p)) => format!("{p}%"),
            (None, None) => unreachable!("checked above"),
        };
        waves.push(PlannedWave { first, end: reach, spec: words, max_failures: spec.max_failures.unwrap_or(0) });
        first = reach;
    }
    Ok(waves)
}

/// Where a run with waves stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WaveState {
    /// Not executed yet.
    NotStarted,
    /// The current wave's items are being applied.
    Running,
    /// The current wave ended within its budget; the next starts when someone continues it.
    AwaitingContinue,
    /// The current wave failed more targets than it allows: halted until continued or cancelled.
    Halted,
    /// The run ended.
    Ended,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(text: &str) -> Vec<WaveSpec> {
        parse_list(text).unwrap()
    }

    fn bounds(waves: &[PlannedWave]) -> Vec<(u32, u32)> {
        waves.iter().map(|w| (w.first, w.end)).collect()
    }

    #[test]
    fn a_canary_then_a_tenth_then_the_rest() {
        let waves = plan(&specs("1, 10%, 100%"), 200).unwrap();
        assert_eq!(bounds(&waves), vec![(0, 1), (1, 20), (20, 200)]);
        assert_eq!(waves[0].spec, "1 target");
        assert_eq!(waves[1].spec, "10%");
        assert!(waves.iter().all(|w| w.max_failures == 0));
    }

    #[test]
    fn waves_a_small_set_leaves_empty_are_dropped() {
        // 10 % of 5 rounds up to 1, which the canary already reaches.
        let waves = plan(&specs("1, 10%, 100%"), 5).unwrap();
        assert_eq!(bounds(&waves), vec![(0, 1), (1, 5)]);
        assert_eq!(waves[1].spec, "100%");
        let one = plan(&specs("1, 100%"), 1).unwrap();
        assert_eq!(bounds(&one), vec![(0, 1)]);
    }

    #[test]
    fn counts_beyond_the_set_are_the_whole_set() {
        let waves = plan(&specs("3, 50"), 10).unwrap();
        assert_eq!(bounds(&waves), vec![(0, 3), (3, 10)]);
    }

    #[test]
    fn max_failures_are_per_wave() {
        let waves = plan(&specs("2:0, 50%:1, 100%:3"), 10).unwrap();
        assert_eq!(waves.iter().map(|w| w.max_failures).collect::<Vec<_>>(), vec![0, 1, 3]);
        assert_eq!(format_list(&specs("2:0, 50%:1, 100%")), "2:0, 50%:1, 100%");
    }

    #[test]
    fn bad_plans_are_refused_with_what_to_change() {
        assert_eq!(plan(&specs("100%"), 3), Err(WaveProblem::Count(1)));
        assert_eq!(plan(&specs("1, 50%"), 10), Err(WaveProblem::LastShort { reach: 5, total: 10 }));
        assert_eq!(
            plan(&specs("50%, 2, 100%"), 10),
            Err(WaveProblem::Shrinks { wave: 2, reach: 2, earlier: 1, earlier_reach: 5 })
        );
        assert_eq!(plan(&specs("0, 100%"), 10), Err(WaveProblem::ZeroTargets { wave: 1 }));
        assert_eq!(plan(&specs("1, 101%"), 10), Err(WaveProblem::Percent { wave: 2, percent: 101 }));
        let both = WaveSpec { targets: Some(1), percent: Some(10), max_failures: None };
        assert_eq!(plan(&[both, WaveSpec::default()], 10), Err(WaveProblem::Reach { wave: 1 }));
        assert_eq!(plan(&specs("1, 100%"), 0), Err(WaveProblem::LastShort { reach: 0, total: 0 }));
        assert!(matches!(parse_list("1, ten%"), Err(WaveProblem::Syntax(s)) if s == "ten%"));
        assert!(matches!(parse_list("1:x"), Err(WaveProblem::Syntax(_))));
        let many = vec![WaveSpec { percent: Some(100), ..WaveSpec::default() }; MAX_WAVES + 1];
        assert_eq!(plan(&many, 10), Err(WaveProblem::Count(MAX_WAVES + 1)));
    }

    #[test]
    fn labels_are_key_equals_value() {
        assert_eq!(LabelMatch::parse("canary=true"), Ok(LabelMatch { key: "canary".into(), value: "true".into() }));
        assert!(LabelMatch::parse("canary").is_err());
        assert!(LabelMatch::parse("=true").is_err());
    }
}
