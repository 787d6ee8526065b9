//! An optimizer's configuration (Keras `get_config` keys, what a checkpoint stores) reads back
//! to the same optimizer: every update rule and its flags, every schedule, every clipping.
use kiln::optim::{Adagrad, Adam, AdamW, Rmsprop, Sgd, UpdateRule};
use kiln::{Error, GradientClip, LearningRateSchedule, Optimizer};
use serde_json::json;

fn rules() -> Vec<UpdateRule> {
    vec![
        Sgd::default().into(),
        Sgd { momentum: 0.9, nesterov: true }.into(),
        Sgd { momentum: 0.3, nesterov: false }.into(),
        Adam::default().into(),
        Adam { beta1: 0.8, beta2: 0.995, epsilon: 1e-6, amsgrad: true }.into(),
        AdamW::default().into(),
        AdamW { weight_decay: 0.013, amsgrad: true, ..AdamW::default() }.into(),
        Adagrad::default().into(),
        Adagrad { initial_accumulator: 0.37, epsilon: 3e-8 }.into(),
        Rmsprop::default().into(),
        Rmsprop { rho: 0.85, momentum: 0.4, epsilon: 1e-6, centered: true }.into(),
        Rmsprop { centered: true, ..Rmsprop::default() }.into(),
    ]
}

fn schedules() -> Vec<LearningRateSchedule> {
    vec![
        LearningRateSchedule::Constant(1e-3),
        LearningRateSchedule::Constant(0.0137),
        LearningRateSchedule::exponential_decay(0.01, 100, 0.96),
        LearningRateSchedule::step_decay(0.1, 30, 0.5),
        LearningRateSchedule::cosine_decay(3e-3, 1000),
        LearningRateSchedule::warmup_cosine_decay(1e-3, 10, 90),
        LearningRateSchedule::CosineDecay {
            initial: 1e-4,
            decay_steps: 500,
            alpha: 0.1,
            warmup_target: Some(2e-3),
            warmup_steps: 50,
        },
    ]
}

const CLIPS: [GradientClip; 4] =
    [GradientClip::None, GradientClip::Norm(1.0), GradientClip::GlobalNorm(2.5), GradientClip::Value(0.3)];

#[test]
fn every_rule_schedule_and_clip_reads_back_from_its_config() {
    let mut n = 0;
    for rule in rules() {
        for schedule in schedules() {
            for clip in CLIPS {
                let opt = Optimizer { rule, schedule, clip };
                let config = opt.config();
                assert_eq!(Optimizer::from_config(&config).unwrap(), opt, "{config}");
                // As a checkpoint stores it: JSON text.
                let text: serde_json::Value = serde_json::from_str(&config.to_string()).unwrap();
                assert_eq!(Optimizer::from_config(&text).unwrap(), opt, "{text}");
                n += 1;
            }
        }
    }
    assert_eq!(n, 12 * 7 * 4);
}

#[test]
fn a_keras_written_config_reads_with_keras_defaults_for_absent_keys() {
    // Keras writes the clipping keys as null when unset, and may omit the flags.
    let adam = json!({
        "name": "adam", "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7,
        "clipnorm": null, "global_clipnorm": null, "clipvalue": null,
    });
    assert_eq!(Optimizer::from_config(&adam).unwrap(), Optimizer::adam(1e-3));
    let cosine = json!({
        "name": "sgd", "momentum": 0.0,
        "learning_rate": {"class_name": "CosineDecay", "config": {"initial_learning_rate": 0.1, "decay_steps": 10}},
    });
    assert_eq!(
        Optimizer::from_config(&cosine).unwrap(),
        Optimizer::sgd(0.1).with_schedule(LearningRateSchedule::cosine_decay(0.1, 10))
    );
}

#[test]
fn malformed_configs_are_errors_naming_the_key() {
    let message = |v: serde_json::Value| match Optimizer::from_config(&v) {
        Err(Error::Invalid { message, .. }) => message,
        other => panic!("{v}: expected an Invalid error, got {other:?}"),
    };
    let mut adam = Optimizer::adam(1e-3).config();
    adam.as_object_mut().unwrap().remove("beta_1");
    assert!(message(adam).contains("'beta_1'"));
    assert!(message(json!({"name": "lion", "learning_rate": 0.1})).contains("unknown optimizer 'lion'"));
    assert!(message(json!({"learning_rate": 0.1})).contains("'name'"));
    let no_lr = json!({"name": "sgd", "momentum": 0.0});
    assert!(message(no_lr).contains("'learning_rate'"));
    let mut sgd = Optimizer::sgd(0.1).config();
    sgd["nesterov"] = json!("yes");
    assert!(message(sgd).contains("'nesterov'"));
    let mut two = Optimizer::sgd(0.1).config();
    (two["clipnorm"], two["clipvalue"]) = (json!(1.0), json!(0.5));
    assert!(message(two).contains("more than one"));
    let mut clip = Optimizer::sgd(0.1).config();
    clip["clipvalue"] = json!("big");
    assert!(message(clip).contains("'clipvalue'"));
    let mut schedule = Optimizer::sgd(0.1).config();
    schedule["learning_rate"] = json!({"class_name": "PolynomialDecay", "config": {}});
    assert!(message(schedule).contains("'PolynomialDecay'"));
    let mut steps = Optimizer::sgd(0.1).with_schedule(LearningRateSchedule::step_decay(0.1, 5, 0.5)).config();
    steps["learning_rate"]["config"]["decay_steps"] = json!(2.5);
    assert!(message(steps).contains("'decay_steps'"));
}
