//! Reading recordings cut off before their trailer.

use super::*;

#[test]
fn recover_reads_finished_transcripts() {
    assert_eq!(
        Transcript::recover(&seal(SAMPLE_BODY)),
        Ok(Recovered::Finished(sample()))
    );
}

#[test]
fn recover_keeps_complete_steps_of_a_cut_recording() {
    let sample = sample();
    let mut header_len = Vec::new();
    print::header_into(&sample.header, &mut header_len);
    // The printed length after each number of complete steps.
    let mut complete = vec![header_len.len()];
    let mut printed = header_len;
    for step in &sample.steps {
        print::step_into(step, &mut printed);
        complete.push(printed.len());
    }
    let text = sample.to_string();
    for cut in complete[0]..text.len() {
        let steps = complete.iter().rposition(|len| *len <= cut).unwrap();
        let expected = Unfinished {
            transcript: Transcript {
                header: sample.header.clone(),
                steps: sample.steps[..steps].to_vec(),
            },
            ignored_tail: cut - complete[steps],
        };
        assert_eq!(
            Transcript::recover(&text[..cut]),
            Ok(Recovered::Unfinished(expected)),
            "cut at {cut}"
        );
    }
}

#[test]
fn recover_needs_the_header_fields() {
    let text = sample().to_string();
    let fields_end = SAMPLE_BODY.find("x-batch").unwrap();
    for cut in 0..fields_end {
        assert!(Transcript::recover(&text[..cut]).is_err(), "cut at {cut}");
    }
    // Extensions are optional: a cut among them keeps those that are complete.
    let Ok(Recovered::Unfinished(unfinished)) = Transcript::recover(&text[..fields_end + 3]) else {
        panic!("not unfinished");
    };
    assert!(unfinished.transcript.header.extensions.is_empty());
    assert_eq!(unfinished.ignored_tail, 3);
}

#[test]
fn recover_still_rejects_bad_lines_and_bad_digests() {
    let body = format!("{HEAD}> 00a4000C\n< 9000\n> 00A4");
    assert_eq!(
        Transcript::recover(&body),
        Err(TranscriptError::LowercaseHex { line: 7, column: 5 })
    );
    let tampered = seal(SAMPLE_BODY).replace("select MF", "select DF");
    assert!(matches!(
        Transcript::recover(&tampered),
        Err(TranscriptError::DigestMismatch { .. })
    ));
}
