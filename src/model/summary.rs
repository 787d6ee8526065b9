//! `summary()` in the Keras 2 table layout: Sequential's three columns, or the functional
//! table with its "Connected to" column.
use super::{Model, TensorRef};
use crate::error::Result;
use crate::nn::batch_shape;

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

/// One row of the table: first column, output shape, parameters, inputs (functional only).
struct Row {
    title: String,
    shape: String,
    params: usize,
    connected: Vec<String>,
}

impl Model {
    /// The Keras summary table: layer (type), output shape, parameter count (and for
    /// functional models the inputs of each layer, `name[call][0]`), then the totals.
    pub fn summary(&self) -> Result<String> {
        let shapes = self.call_shapes()?;
        let layer_params = self.layer_params()?;
        let mut rows = Vec::new();
        if self.functional {
            for input in &self.inputs {
                rows.push(Row {
                    title: format!("{} (InputLayer)", input.name),
                    shape: format!("[{}]", batch_shape(&input.shape)),
                    params: 0,
                    connected: vec![],
                });
            }
        }
        // Keras's node index: which call of its layer made a value.
        let mut call_of_layer = vec![0usize; self.layers.len()];
        let mut node_index = Vec::with_capacity(self.calls.len());
        for call in &self.calls {
            node_index.push(call_of_layer[call.layer]);
            call_of_layer[call.layer] += 1;
        }
        let mut layer_row: Vec<Option<usize>> = vec![None; self.layers.len()];
        let (mut total, mut frozen) = (0, 0);
        for (i, call) in self.calls.iter().enumerate() {
            let connected = call.inputs.iter().map(|&r| {
                let (node, k) = match r {
                    TensorRef::Input(_) => (0, 0),
                    TensorRef::Call(c, k) => (node_index[c], k),
                };
                format!("'{}[{node}][{k}]'", self.source_name(r))
            });
            // A shared layer is one row; its later calls add their inputs to it.
            if let Some(row) = layer_row[call.layer] {
                let row: &mut Row = &mut rows[row];
                row.connected.extend(connected);
                continue;
            }
            let layer = &self.layers[call.layer];
            let specs = &layer_params[call.layer];
            let count = |p: &crate::nn::ParamSpec| p.shape.iter().product::<usize>();
            let params: usize = specs.iter().map(count).sum();
            frozen += specs.iter().filter(|p| !p.trainable).map(count).sum::<usize>();
            total += params;
            layer_row[call.layer] = Some(rows.len());
            rows.push(Row {
                title: format!("{} ({})", self.names[call.layer], layer.class_name()),
                shape: match shapes[i].as_slice() {
                    [one] => batch_shape(one),
                    // Several outputs (return_state), as Keras 2 lists them.
                    all => format!("[{}]", all.iter().map(|s| batch_shape(s)).collect::<Vec<_>>().join(", ")),
                },
                params,
                connected: connected.collect(),
            });
        }
        // Keras's 28-character column (32 for functional models), widened so long names keep
        // a space before the shape.
        let min = if self.functional { 32 } else { 28 };
        let w = rows.iter().map(|r| r.title.chars().count() + 1).max().unwrap_or(0).max(min);
        let shape_w = rows.iter().map(|r| r.shape.len() + 1).max().unwrap_or(0).max(26);
        let extra = if self.functional { 12 + 30 } else { 11 };
        let rule = "_".repeat(w + shape_w + extra);
        let double = "=".repeat(w + shape_w + extra);
        let title = if self.functional { "functional" } else { "sequential" };
        let mut s =
            format!("Model: \"{title}\"\n{rule}\n {:<w$}{:<shape_w$}", "Layer (type)", "Output Shape");
        s += &if self.functional { format!("{:<12}Connected to\n", "Param #") } else { "Param #\n".into() };
        s += &format!("{double}\n");
        for row in &rows {
            if !self.functional {
                s += &format!(" {:<w$}{:<shape_w$}{}\n", row.title, row.shape, row.params);
                continue;
            }
            if row.connected.is_empty() {
                s += &format!(" {:<w$}{:<shape_w$}{:<12}[]\n", row.title, row.shape, row.params);
            }
            // One input per line, as Keras 2 prints them.
            for (k, c) in row.connected.iter().enumerate() {
                let open = if k == 0 { "[" } else { " " };
                let close = if k + 1 == row.connected.len() { "]" } else { "," };
                let (title, shape, params) = match k {
                    0 => (row.title.as_str(), row.shape.as_str(), row.params.to_string()),
                    _ => ("", "", String::new()),
                };
                s += &format!(" {title:<w$}{shape:<shape_w$}{params:<12}{open}{c}{close}\n");
            }
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
