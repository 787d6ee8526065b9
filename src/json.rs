//! f32 values in JSON metadata (checkpoints, optimizer configs): written with the fewest digits
//! that read back as the same f32, and read back exactly.
use serde_json::Value;

/// `v` as the JSON number with the fewest digits that reads back as the same f32 (`0.001`,
/// not `0.0010000000474974513`); null for NaN and infinities.
pub fn short(v: f32) -> Value {
    v.to_string().parse::<f64>().ok().filter(|f| f.is_finite()).map_or(Value::Null, Value::from)
}

/// The f32 a JSON number stands for, rounded once from its decimal digits (going through f64
/// could round twice). None for anything but a number.
pub fn read_f32(v: &Value) -> Option<f32> {
    v.as_number()?.to_string().parse().ok()
}
