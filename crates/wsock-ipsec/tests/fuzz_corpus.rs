//! Replays the committed cargo-fuzz corpus (`fuzz/corpus/<target>/`) through the same entry
//! functions the fuzz targets call, on the stable toolchain and without libFuzzer. The harness
//! (`fuzz/src/harness.rs`) asserts each target's invariants; this test adds that every input did
//! something observable and that every target's corpus holds both accepted and refused inputs,
//! so that a corpus reduced to trivia would fail here.

#[path = "../../../fuzz/src/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::Outcome;
use std::path::PathBuf;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// Runs every file of `target`'s corpus through `entry`; returns the number of files and the
/// summed outcome.
fn replay(target: &str, entry: fn(&[u8]) -> Outcome) -> (usize, Outcome) {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} missing: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut total = Outcome::default();
    for f in &files {
        let data = std::fs::read(f).expect("read corpus file");
        let o = std::panic::catch_unwind(|| entry(&data)).unwrap_or_else(|_| {
            panic!(
                "{target}: {} panicked (reproduce: cargo fuzz run {target} {})",
                f.display(),
                f.display()
            )
        });
        total.accepted += o.accepted;
        total.rejected += o.rejected;
    }
    (files.len(), total)
}

fn check(target: &str, entry: fn(&[u8]) -> Outcome, min_files: usize) {
    let (n, o) = replay(target, entry);
    println!(
        "{target}: {n} inputs, {} accepted, {} refused or dropped",
        o.accepted, o.rejected
    );
    assert!(n >= min_files, "{target}: only {n} corpus files");
    assert!(o.accepted > 0, "{target}: no input was accepted");
    assert!(o.rejected > 0, "{target}: no input was refused");
}

#[test]
fn ike_message_corpus() {
    check("ike_message", harness::ike_message, 5);
}

#[test]
fn natt_classify_corpus() {
    check("natt_classify", harness::natt_classify, 5);
}

#[test]
fn esp_open_corpus() {
    check("esp_open", harness::esp_open, 5);
}

#[test]
fn esp_tunnel_corpus() {
    check("esp_tunnel", harness::esp_tunnel, 4);
}

#[test]
fn cert_verify_corpus() {
    check("cert_verify", harness::cert_verify, 5);
}

#[test]
fn ike_responder_corpus() {
    check("ike_responder", harness::ike_responder, 5);
}

#[test]
fn ike_initiator_corpus() {
    check("ike_initiator", harness::ike_initiator, 5);
}

/// Found by `cert_verify`: an ID with an empty last label (`b.example..`) was taken as a name of
/// the certificate for `b.example`; as a target name too. Both are refused now, while the
/// absolute form with one trailing dot still matches.
#[test]
fn cert_names_with_an_empty_label_match_nothing() {
    fn mode2(id: &[u8], target: Option<&[u8]>) -> Vec<u8> {
        let mut v = vec![2, 2, id.len() as u8];
        v.extend_from_slice(id);
        match target {
            None => v.push(0),
            Some(t) => {
                v.push(1);
                v.extend_from_slice(t);
            }
        }
        v
    }
    let refused = |input: Vec<u8>| {
        harness::cert_verify(&input)
            == Outcome {
                accepted: 0,
                rejected: 1,
            }
    };
    let accepted = |input: Vec<u8>| {
        harness::cert_verify(&input)
            == Outcome {
                accepted: 1,
                rejected: 0,
            }
    };
    assert!(refused(mode2(b"b.example..", None)));
    assert!(refused(mode2(b"b.example", Some(b"host/b.example.."))));
    assert!(accepted(mode2(b"b.example.", None)));
    assert!(accepted(mode2(b"b.example", Some(b"HOST/B.Example."))));
}
