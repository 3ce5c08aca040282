//! SVG charts: well-formed XML, labels present and escaped, nice ticks, degenerate inputs.

use autoencoders::figures::svg::{line_chart, linear_ticks, log_ticks, nice_step, save_svg, Series};
use proptest::prelude::*;

/// A small XML well-formedness check: tags nest and close, quotes pair up inside tags,
/// every '&' starts a known entity, and there is exactly one root element.
fn check_well_formed(svg: &str) -> Result<(), String> {
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut rest = svg;
    while let Some(i) = rest.find('<') {
        check_text(&rest[..i])?;
        if stack.is_empty() && !rest[..i].trim().is_empty() {
            return Err(format!("text outside the root: {:?}", &rest[..i]));
        }
        let end = rest[i..].find('>').ok_or("unclosed tag")? + i;
        let tag = &rest[i + 1..end];
        rest = &rest[end + 1..];
        if !tag.matches('"').count().is_multiple_of(2) || tag.contains('<') {
            return Err(format!("bad quoting in <{tag}>"));
        }
        if let Some(name) = tag.strip_prefix('/') {
            match stack.pop() {
                Some(open) if open == name.trim() => {}
                other => return Err(format!("</{name}> closes {other:?}")),
            }
            continue;
        }
        let name: String = tag.chars().take_while(|c| !c.is_whitespace() && *c != '/').collect();
        if name.is_empty() {
            return Err(format!("empty tag name in <{tag}>"));
        }
        if stack.is_empty() {
            roots += 1;
        }
        if !tag.ends_with('/') {
            stack.push(name);
        }
    }
    check_text(rest)?;
    if !stack.is_empty() || roots != 1 || !rest.trim().is_empty() {
        return Err(format!("unclosed {stack:?}, {roots} roots, trailing {rest:?}"));
    }
    Ok(())
}

fn check_text(text: &str) -> Result<(), String> {
    for (i, _) in text.match_indices('&') {
        if !["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].iter().any(|e| text[i..].starts_with(e)) {
            return Err(format!("bare & in {text:?}"));
        }
    }
    Ok(())
}

/// The contents of every `<text ...>` element whose attributes contain `attr`.
fn texts_with<'a>(svg: &'a str, attr: &str) -> Vec<&'a str> {
    svg.lines()
        .filter(|l| l.starts_with("<text") && l.contains(attr))
        .map(|l| &l[l.find('>').unwrap() + 1..l.rfind("</text>").unwrap()])
        .collect()
}

fn losses() -> Vec<Series> {
    let epochs = |f: fn(f64) -> f64| (1..=10).map(|e| (e as f64, f(e as f64))).collect();
    vec![
        Series { name: "train".into(), points: epochs(|e| 0.06 / e) },
        Series { name: "test <h=256> & more".into(), points: epochs(|e| 0.05 / e + 0.002) },
    ]
}

#[test]
fn chart_is_well_formed_with_labels_and_legend() {
    for log_y in [false, true] {
        let svg = line_chart("Deep AE: loss", "epoch", "MSE per pixel", &losses(), log_y);
        check_well_formed(&svg).unwrap_or_else(|e| panic!("log_y {log_y}: {e}\n{svg}"));
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        for needle in ["Deep AE: loss", "epoch", "MSE per pixel", ">train<", "test &lt;h=256&gt; &amp; more"] {
            assert!(svg.contains(needle), "missing {needle:?}");
        }
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 20, "10 markers per series");
        // Two distinct colours.
        assert!(svg.contains("#1f77b4") && svg.contains("#ff7f0e"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        // Every y tick label is a number, and the labels cover the data.
        let labels: Vec<f64> = texts_with(&svg, "text-anchor=\"end\"").iter().map(|t| t.parse().unwrap()).collect();
        assert!((3..=10).contains(&labels.len()), "{labels:?}");
        let (lo, hi) = (labels.iter().cloned().fold(f64::MAX, f64::min), labels.iter().cloned().fold(0.0, f64::max));
        assert!(lo <= 0.006 && hi >= 0.06, "log_y {log_y}: ticks {labels:?} do not span the data");
    }
}

#[test]
fn x_ticks_for_epochs_and_steps() {
    let svg = line_chart("t", "epoch", "y", &losses(), false);
    let xs: Vec<&str> = texts_with(&svg, "y=\"388.0\" text-anchor=\"middle\"");
    assert_eq!(xs, vec!["0", "2", "4", "6", "8", "10"]);
    let steps = Series { name: "step".into(), points: (0..9380).map(|s| (s as f64, 1.0 / (1.0 + s as f64))).collect() };
    let svg = line_chart("t", "step", "y", &[steps], true);
    check_well_formed(&svg).unwrap();
    assert_eq!(
        texts_with(&svg, "y=\"388.0\" text-anchor=\"middle\""),
        vec!["0", "2000", "4000", "6000", "8000", "10000"]
    );
    assert_eq!(svg.matches("<circle").count(), 0, "no markers on long series");
}

#[test]
fn nice_ticks_are_1_2_5_and_cover_the_data() {
    assert_eq!(nice_step(0.23), 0.2);
    assert_eq!(nice_step(0.04), 0.05);
    assert_eq!(nice_step(120.0), 100.0);
    assert_eq!(nice_step(8.0), 10.0);
    for (lo, hi) in [(0.0, 1.0), (0.0123, 0.0617), (1.0, 10.0), (-3.2, 7.9), (1e-7, 3e-7), (2e6, 9e6), (-5.0, -4.0)] {
        let (a, b, ticks) = linear_ticks(Some((lo, hi)));
        assert!(a <= lo && b >= hi, "[{a}, {b}] does not cover [{lo}, {hi}]");
        assert!((3..=10).contains(&ticks.len()), "{lo}..{hi}: {ticks:?}");
        let step = ticks[1].0 - ticks[0].0;
        let m = step / 10f64.powf(step.log10().floor());
        assert!([1.0, 2.0, 5.0, 10.0].iter().any(|n| (m - n).abs() < 1e-9), "step {step}");
        for (v, label) in &ticks {
            let parsed: f64 = label.parse().unwrap_or_else(|_| panic!("label {label:?}"));
            assert!((parsed - v).abs() <= step * 1e-6, "label {label} for {v}");
        }
    }
    // Log axis: whole decades, with 2 and 5 in between when the span is short.
    let (a, b, t) = log_ticks(Some((0.012f64.log10(), 0.06f64.log10())));
    assert_eq!((a, b), (-2.0, -1.0));
    assert_eq!(t.iter().map(|x| x.1.as_str()).collect::<Vec<_>>(), vec!["0.01", "0.02", "0.05", "0.1"]);
    let (_, _, t) = log_ticks(Some((-12.0, 3.5)));
    assert!(t.len() <= 9, "{t:?}");
    assert!(t.iter().any(|x| x.1 == "1e-12") && t.iter().all(|x| x.1.parse::<f64>().is_ok()));
}

#[test]
fn degenerate_series() {
    let one = Series { name: "one".into(), points: vec![(3.0, 0.5)] };
    let flat = Series { name: "flat".into(), points: vec![(0.0, 2.0), (1.0, 2.0), (2.0, 2.0)] };
    let junk = Series { name: "junk".into(), points: vec![(f64::NAN, 1.0), (1.0, f64::INFINITY), (2.0, -1.0)] };
    let empty = Series { name: "empty".into(), points: vec![] };
    // Found by the fuzz test below: a span past f64::MAX once produced NaN coordinates.
    let huge = Series { name: "huge".into(), points: vec![(1.2e308, 966.0), (-3.7e127, 1.7e266), (-1.7e308, 5e-324)] };
    let tiny = Series { name: "tiny".into(), points: vec![(0.0, 5e-324), (1.0, 5e-324)] };
    for log_y in [false, true] {
        for set in [
            vec![one.clone()],
            vec![flat.clone()],
            vec![junk.clone()],
            vec![empty.clone()],
            vec![one.clone(), flat.clone(), junk.clone()],
            vec![huge.clone()],
            vec![tiny.clone()],
            vec![],
        ] {
            let svg = line_chart("t", "x", "y", &set, log_y);
            check_well_formed(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        }
    }
    // A single point is drawn as a marker; no polyline can show it.
    let svg = line_chart("t", "x", "y", &[one], false);
    assert_eq!((svg.matches("<circle").count(), svg.matches("<polyline").count()), (1, 0));
    // On a log axis the -1 is skipped, the 2.0 kept.
    let svg = line_chart("t", "x", "y", &[junk], true);
    assert_eq!(svg.matches("<circle").count(), 0, "{svg}");
}

#[test]
fn saved_atomically() {
    let dir = std::env::temp_dir().join(format!("figures_svg_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("loss.svg");
    let svg = line_chart("t", "x", "y", &losses(), false);
    save_svg(&p, &svg).unwrap();
    assert_eq!(std::fs::read_to_string(&p).unwrap(), svg);
    assert!(save_svg(&dir.join("missing/loss.svg"), &svg).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn any_numbers_give_a_well_formed_chart(
        pts in proptest::collection::vec((any::<f64>(), prop_oneof![any::<f64>(), -1e3f64..1e3, 1e-9f64..1e-6]), 0..30),
        log_y in any::<bool>(),
    ) {
        let svg = line_chart("t", "x", "y", &[Series { name: "s".into(), points: pts }], log_y);
        prop_assert!(check_well_formed(&svg).is_ok(), "{}", svg);
        prop_assert!(!svg.contains("NaN"), "{}", svg);
    }
}
