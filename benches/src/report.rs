//! Samples, medians, the results table and the JSON file.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

/// Whether bigger or smaller is better for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// A target a metric is judged against.
#[derive(Debug, Clone)]
pub enum Target {
    /// At least `factor` × the median of another metric (a limit).
    RatioOf { reference: String, factor: f64 },
    /// At least this absolute value.
    AtLeast(f64),
    /// At most this absolute value.
    AtMost(f64),
    /// Strictly under this absolute value.
    Under(f64),
    /// No target: only the ratio to another metric is shown.
    Compare(String),
}

/// One measured quantity with all its samples.
#[derive(Debug, Clone)]
pub struct Metric {
    pub id: String,
    pub label: String,
    pub unit: &'static str,
    pub better: Better,
    pub samples: Vec<f64>,
    pub target: Option<Target>,
    pub note: Option<String>,
}

/// Median (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The `q`-quantile (0..=1) of sorted values, nearest rank.
pub fn quantile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1])
}

/// All metrics of a run, in insertion order.
#[derive(Debug, Default)]
pub struct Results {
    order: Vec<String>,
    metrics: BTreeMap<String, Metric>,
}

impl Results {
    /// Declares a metric (idempotent) so samples can be added to it.
    pub fn declare(
        &mut self,
        id: &str,
        label: &str,
        unit: &'static str,
        better: Better,
        target: Option<Target>,
    ) {
        if !self.metrics.contains_key(id) {
            self.order.push(id.to_string());
            self.metrics.insert(
                id.to_string(),
                Metric {
                    id: id.to_string(),
                    label: label.to_string(),
                    unit,
                    better,
                    samples: Vec::new(),
                    target,
                    note: None,
                },
            );
        }
    }

    /// Adds one sample to a declared metric.
    pub fn add(&mut self, id: &str, value: f64) {
        if let Some(m) = self.metrics.get_mut(id) {
            m.samples.push(value);
        }
    }

    /// Attaches a note to a metric.
    pub fn note(&mut self, id: &str, note: impl Into<String>) {
        if let Some(m) = self.metrics.get_mut(id) {
            m.note = Some(note.into());
        }
    }

    fn median_of(&self, id: &str) -> Option<f64> {
        self.metrics
            .get(id)
            .map(|m| median(&m.samples))
            .filter(|v| v.is_finite())
    }

    /// `(required value, ratio to the reference, met)` for a metric with a target.
    fn judge(&self, m: &Metric) -> Option<(f64, Option<f64>, bool)> {
        let value = median(&m.samples);
        if !value.is_finite() {
            return None;
        }
        match m.target.as_ref()? {
            Target::RatioOf { reference, factor } => {
                let limit = self.median_of(reference)?;
                let ratio = value / limit;
                Some((limit * factor, Some(ratio), ratio >= *factor))
            }
            Target::AtLeast(t) => Some((*t, None, value >= *t)),
            Target::AtMost(t) => Some((*t, None, value <= *t)),
            Target::Under(t) => Some((*t, None, value < *t)),
            Target::Compare(_) => None,
        }
    }

    /// The ratio to the reference of a [`Target::Compare`] metric.
    fn compare_ratio(&self, m: &Metric) -> Option<f64> {
        match &m.target {
            Some(Target::Compare(reference)) => {
                Some(median(&m.samples) / self.median_of(reference)?).filter(|r| r.is_finite())
            }
            _ => None,
        }
    }

    fn target_text(&self, m: &Metric) -> String {
        match &m.target {
            None => String::new(),
            Some(Target::RatioOf { reference, factor }) => {
                let label = self
                    .metrics
                    .get(reference)
                    .map(|r| r.label.clone())
                    .unwrap_or_else(|| reference.clone());
                format!("≥ {factor} × {label}")
            }
            Some(Target::AtLeast(t)) => format!("≥ {}", fmt_num(*t)),
            Some(Target::AtMost(t)) => format!("≤ {}", fmt_num(*t)),
            Some(Target::Under(t)) => format!("< {}", fmt_num(*t)),
            Some(Target::Compare(reference)) => {
                let label = self
                    .metrics
                    .get(reference)
                    .map(|r| r.label.clone())
                    .unwrap_or_else(|| reference.clone());
                format!("(vs {label})")
            }
        }
    }

    /// The results as a markdown table (also readable on a terminal).
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str("| Metric | Median | Min–max | n | Target | Ratio | Met |\n");
        out.push_str("|---|---:|---:|---:|---|---:|:-:|\n");
        for id in &self.order {
            let m = &self.metrics[id];
            let med = median(&m.samples);
            let (min, max) = m
                .samples
                .iter()
                .copied()
                .filter(|x| x.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                    (a.min(x), b.max(x))
                });
            let judged = self.judge(m);
            let ratio = judged
                .and_then(|(_, r, _)| r)
                .or_else(|| self.compare_ratio(m))
                .map(|r| format!("{r:.2}"))
                .unwrap_or_default();
            let met = match judged {
                Some((_, _, true)) => "yes",
                Some((_, _, false)) => "**no**",
                None if matches!(m.target, Some(Target::Compare(_))) => "",
                None if m.target.is_some() => "?",
                None => "",
            };
            let range = if min.is_finite() && m.samples.len() > 1 {
                format!("{}–{}", fmt_num(min), fmt_num(max))
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {} | {} {} | {} | {} | {} | {} | {} |",
                m.label,
                fmt_num(med),
                m.unit,
                range,
                m.samples.len(),
                self.target_text(m),
                ratio,
                met
            );
        }
        out
    }

    /// Notes attached to metrics, as a list.
    pub fn notes(&self) -> String {
        let mut out = String::new();
        for id in &self.order {
            let m = &self.metrics[id];
            if let Some(note) = &m.note {
                let _ = writeln!(out, "- {}: {}", m.label, note);
            }
        }
        out
    }

    /// The results as JSON.
    pub fn to_json(&self, context: Value) -> Value {
        let metrics: Vec<Value> = self
            .order
            .iter()
            .map(|id| {
                let m = &self.metrics[id];
                let judged = self.judge(m);
                let finite: Vec<f64> = m.samples.iter().copied().filter(|x| x.is_finite()).collect();
                json!({
                    "id": m.id,
                    "label": m.label,
                    "unit": m.unit,
                    "better": if m.better == Better::Higher { "higher" } else { "lower" },
                    "median": finite_or_null(median(&m.samples)),
                    "min": finite.iter().copied().reduce(f64::min),
                    "max": finite.iter().copied().reduce(f64::max),
                    "samples": finite,
                    "target": if m.target.is_some() { Value::String(self.target_text(m)) } else { Value::Null },
                    "required": judged.map(|(req, _, _)| req),
                    "ratio": judged.and_then(|(_, r, _)| r).or_else(|| self.compare_ratio(m)),
                    "met": judged.map(|(_, _, met)| met),
                    "note": m.note,
                })
            })
            .collect();
        json!({ "context": context, "metrics": metrics })
    }
}

fn finite_or_null(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

/// Three significant-ish digits, no exponent.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_quantiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        let sorted: Vec<u32> = (1..=100).collect();
        assert_eq!(quantile(&sorted, 0.5), 50.0);
        assert_eq!(quantile(&sorted, 0.99), 99.0);
    }
}
