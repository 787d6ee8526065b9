use std::io::Read;
use kiln::*;
use kiln::model::CompileOptions;
fn main() {
    let mut s = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open("assets/digits.csv.gz").unwrap()).read_to_string(&mut s).unwrap();
    let rows: Vec<Vec<f32>> = s.lines().map(|l| l.split(',').map(|v| v.trim().parse().unwrap()).collect()).collect();
    let n = rows.len();
    let mut x: Vec<f32> = rows.iter().flat_map(|r| r[..64].to_vec()).collect();
    let y: Vec<f32> = rows.iter().map(|r| r[64]).collect();
    for v in x.iter_mut() { *v /= 16.0; }
    let ntr = 1437;
    let xt = Tensor::new(&[ntr, 64], x[..ntr*64].to_vec()).unwrap();
    let yt = Tensor::new(&[ntr], y[..ntr].to_vec()).unwrap();
    let xv = Tensor::new(&[n-ntr, 64], x[ntr*64..].to_vec()).unwrap();
    let yv = Tensor::new(&[n-ntr], y[ntr..].to_vec()).unwrap();
    let mut m = Sequential::new(&[64]).add(Dense::new(64, Activation::Relu)).add(Dense::new(10, Activation::Softmax));
    m.compile(CompileOptions::new(Optimizer::adam(1e-3), Loss::SparseCategoricalCrossentropy, Device::Cpu)).unwrap();
    print!("{}", m.summary().unwrap());
    let t = std::time::Instant::now();
    let h = m.fit(&xt, &yt, &FitOptions { epochs: 30, verbose: 2, validation: Validation::Data(xv.clone(), yv.clone()), ..Default::default() }).unwrap();
    println!("{:?} {:.3}s", h.last("val_accuracy"), t.elapsed().as_secs_f64());
    let p = m.predict(&xv, 64).unwrap();
    let acc = p.argmax_rows().iter().zip(&yv.data).filter(|(a, b)| **a == **b as usize).count() as f32 / yv.len() as f32;
    println!("predict acc {acc}, planned {}", m.planned_memory_bytes());
}
