//! What `kiln eval` prints about a classifier: the confusion matrix and, from it, each
//! class's precision, recall, F1 and support with their macro and weighted averages (as
//! scikit-learn's `classification_report`).

/// One class's scores from the confusion matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Samples of this class.
    pub support: usize,
}

impl ClassScores {
    /// `{"precision", "recall", "f1", "support"}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "precision": self.precision, "recall": self.recall, "f1": self.f1, "support": self.support,
        })
    }
}

/// Each class's scores from `m[true][predicted]` (0 where a ratio's denominator is 0).
pub fn class_scores(m: &[Vec<usize>]) -> Vec<ClassScores> {
    (0..m.len())
        .map(|c| {
            let tp = m[c].get(c).copied().unwrap_or(0);
            let predicted: usize = m.iter().map(|row| row.get(c).copied().unwrap_or(0)).sum();
            let support: usize = m[c].iter().sum();
            let (fp, fneg) = (predicted - tp, support - tp);
            let (precision, recall, f1) =
                crate::metrics::precision_recall_f1(tp as f64, fp as f64, fneg as f64);
            ClassScores { precision, recall, f1, support }
        })
        .collect()
}

/// The per-class table with the macro average (every class alike) and the weighted one (by
/// support).
pub fn classification_report(scores: &[ClassScores], names: &[String]) -> String {
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0).clamp(12, 24);
    let mut s =
        format!("{:>width$} {:>9} {:>9} {:>9} {:>9}\n", "", "precision", "recall", "f1-score", "support");
    let line = |name: &str, p: f64, r: f64, f: f64, n: usize| {
        let name: String = name.chars().take(width).collect();
        format!("{name:>width$} {p:>9.4} {r:>9.4} {f:>9.4} {n:>9}\n")
    };
    for (i, c) in scores.iter().enumerate() {
        let name = names.get(i).cloned().unwrap_or_else(|| i.to_string());
        s += &line(&name, c.precision, c.recall, c.f1, c.support);
    }
    let total: usize = scores.iter().map(|c| c.support).sum();
    let k = scores.len().max(1) as f64;
    type Score = fn(&ClassScores) -> f64;
    let mean = |f: Score| scores.iter().map(f).sum::<f64>() / k;
    let weighted =
        |f: Score| scores.iter().map(|c| f(c) * c.support as f64).sum::<f64>() / total.max(1) as f64;
    let (p, r, f): (Score, Score, Score) = (|c| c.precision, |c| c.recall, |c| c.f1);
    s += &line("macro avg", mean(p), mean(r), mean(f), total);
    s += &line("weighted avg", weighted(p), weighted(r), weighted(f), total);
    s
}

/// The confusion matrix as text: rows the true class, columns the predicted one.
pub fn confusion_table(m: &[Vec<usize>], names: &[String]) -> String {
    let width =
        m.iter().flatten().map(|c| c.to_string().len()).max().unwrap_or(1).max(m.len().to_string().len()) + 1;
    // Names are shown beside the row numbers unless they are the numbers themselves.
    let numbered = names.iter().enumerate().all(|(i, n)| *n == i.to_string());
    let name_width =
        if numbered { 0 } else { names.iter().map(|n| n.chars().count()).max().unwrap_or(1).min(20) };
    let mut s = "confusion matrix (rows: true class, columns: predicted class)\n".to_string();
    s += &format!("{:>w$} {:<nw$}", "", "", w = width, nw = name_width);
    for j in 0..m.len() {
        s += &format!("{j:>width$}");
    }
    s += "\n";
    for (i, row) in m.iter().enumerate() {
        let name: String = if numbered {
            String::new()
        } else {
            names.get(i).map_or(String::new(), |n| n.chars().take(20).collect())
        };
        s += &format!("{i:>width$} {name:<name_width$}");
        for c in row {
            s += &format!("{c:>width$}");
        }
        s += "\n";
    }
    s
}

/// A forecaster's test errors in the series' own units, beside the persistence baseline
/// (the next value is the window's last: a predicted change of 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForecastErrors {
    pub rmse: f64,
    pub mae: f64,
    pub persistence_rmse: f64,
    pub persistence_mae: f64,
}

impl ForecastErrors {
    /// From the target changes `y`, the predicted ones ([N, 1]) and the series' `scale`
    /// ([`crate::data::series::Forecast::scale`]).
    pub fn new(y: &[f32], predicted: &[f32], scale: f32) -> ForecastErrors {
        let (mut se, mut ae, mut pse, mut pae) = (0.0, 0.0, 0.0, 0.0);
        for (&t, &p) in y.iter().zip(predicted) {
            let (e, pe) = ((p - t) as f64 * scale as f64, -t as f64 * scale as f64);
            (se, ae, pse, pae) = (se + e * e, ae + e.abs(), pse + pe * pe, pae + pe.abs());
        }
        let n = y.len().max(1) as f64;
        ForecastErrors {
            rmse: (se / n).sqrt(),
            mae: ae / n,
            persistence_rmse: (pse / n).sqrt(),
            persistence_mae: pae / n,
        }
    }
}
