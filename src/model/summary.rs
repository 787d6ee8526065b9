//! `summary()` in the Keras 2 table layout.
use super::Sequential;
use crate::error::Result;

/// 1234567 → "1,234,567".
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

impl Sequential {
    /// The Keras summary table: layer (type), output shape, parameter count, totals.
    pub fn summary(&self) -> Result<String> {
        let shapes = self.output_shapes()?;
        let titles: Vec<String> =
            self.layers.iter().zip(&self.names).map(|(l, n)| format!("{n} ({})", l.class_name())).collect();
        // Keras's 28-character column, widened so long names keep a space before the shape.
        let w = titles.iter().map(|t| t.chars().count() + 1).max().unwrap_or(0).max(28);
        let rule = "_".repeat(w + 37);
        let double = "=".repeat(w + 37);
        let mut s = format!(
            "Model: \"sequential\"\n{rule}\n {:<w$}{:<26}{}\n{double}\n",
            "Layer (type)", "Output Shape", "Param #"
        );
        let mut input = self.input_shape.clone();
        let mut total = 0;
        let mut frozen = 0;
        for ((layer, col1), shape) in self.layers.iter().zip(&titles).zip(&shapes) {
            let specs = layer.params(&input);
            let count = |p: &&crate::nn::ParamSpec| p.shape.iter().product::<usize>();
            let params: usize = specs.iter().map(|p| count(&p)).sum();
            frozen += specs.iter().filter(|p| !p.trainable).map(|p| count(&p)).sum::<usize>();
            total += params;
            let dims: Vec<String> =
                std::iter::once("None".to_string()).chain(shape.iter().map(|d| d.to_string())).collect();
            s += &format!(" {col1:<w$}{:<26}{}\n", format!("({})", dims.join(", ")), params);
            input = shape.clone();
        }
        s += &format!(
            "{double}\nTotal params: {}\nTrainable params: {}\nNon-trainable params: {}\n{rule}\n",
            thousands(total),
            thousands(total - frozen),
            thousands(frozen)
        );
        Ok(s)
    }
}
