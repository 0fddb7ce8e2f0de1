use super::*;

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEICg3q9/JQwE0e9W8IMUeAUp9/JPfM/SpuZeaEtXCao";

fn one(line: &str) -> Result<Signer, String> {
    let mut all = parse(line);
    match (all.signers.pop(), all.skipped.pop()) {
        (Some(s), None) => Ok(s),
        (None, Some((_, why))) => Err(why),
        other => panic!("{line}: {other:?}"),
    }
}

#[test]
fn fields_and_options_split_as_openssh_splits_them() {
    let s = one(&format!(
        "alice@example.com namespaces=\"file,git\" {KEY} alice's laptop"
    ))
    .unwrap();
    assert_eq!(
        (s.principals.as_str(), s.namespaces.as_deref()),
        ("alice@example.com", Some("file,git"))
    );
    let s = one(&format!("\"alice deploy\",bob {KEY}")).unwrap_err();
    assert_eq!(
        s, "bad options: unsupported option",
        "the field ends at the closing quote"
    );
    let s = one(&format!("\"alice deploy\" Cert-Authority,NAMESPACES=\"g\\\"it\" {KEY}")).unwrap();
    assert_eq!((s.principals.as_str(), s.ca), ("alice deploy", true));
    assert_eq!(s.namespaces.as_deref(), Some("g\"it"));
    let s = one(&format!(
        "a valid-after=\"20260101Z\",valid-before=\"20270101Z\"\t{KEY}"
    ))
    .unwrap();
    assert_eq!(
        (s.valid_after, s.valid_before),
        (Some(1_767_225_600), Some(1_798_761_600))
    );
}

#[test]
fn lines_openssh_cannot_read_are_skipped_with_its_reason() {
    let rows = [
        ("alice", "invalid line: no key after the principals"),
        ("alice ", "missing key"),
        (&format!("alice bogus {KEY}"), "bad options: unsupported option"),
        (
            &format!("alice namespaces=git {KEY}"),
            "bad options: missing start quote",
        ),
        (
            &format!("alice namespaces=\"git {KEY}"),
            "invalid options: a quote is not closed",
        ),
        (
            &format!("alice valid-after=20260101 {KEY}"),
            "bad options: missing start quote",
        ),
        (
            &format!("alice valid-after=\"2026\" {KEY}"),
            "bad options: invalid \"valid-after\" time",
        ),
        (
            &format!("alice valid-after=\"19700101Z\" {KEY}"),
            "bad options: invalid \"valid-after\" time",
        ),
        (
            &format!("alice namespaces=\"a\",namespaces=\"b\" {KEY}"),
            "bad options: multiple \"namespaces\" clauses",
        ),
        (
            &format!("alice namespaces=\"git\", {KEY}"),
            "bad options: unexpected end-of-options",
        ),
        (
            &format!("alice namespaces=\"git\"x {KEY}"),
            "bad options: unknown key option",
        ),
        (
            &format!("alice valid-after=\"20270101Z\",valid-before=\"20260101Z\" {KEY}"),
            "bad options: \"valid-before\" time is before \"valid-after\"",
        ),
        ("alice ssh-ed25519 AAAAnotakey", "invalid key"),
    ];
    for (line, want) in rows {
        assert_eq!(one(line).unwrap_err(), want, "{line}");
    }
    let all = parse(&format!("# deployers\n\n   # indented comment\nalice {KEY}\nbogus\n"));
    assert_eq!((all.signers.len(), all.skipped.len()), (1, 1));
    assert_eq!(all.skipped[0].0, 5);
}

#[test]
fn a_signature_is_vouched_for_by_the_first_line_holding_its_key_at_its_time() {
    let key = PublicKey::from_openssh(KEY).unwrap();
    let key = key.key_data();
    let jan_2026 = 1_767_225_600;
    let vouch = |text: &str| parse(&text.replace("KEY", KEY)).vouch(key, "git", jan_2026);
    assert_eq!(vouch("a@x,b@x KEY"), Ok("a@x".into()));
    assert_eq!(
        vouch("!a@x,* KEY"),
        Ok("!a@x".into()),
        "ssh-keygen's own verdict on a negation"
    );
    assert_eq!(vouch("!*,a@x KEY"), Err(NoSigner::NotListed));
    assert_eq!(vouch("a@x namespaces=\"file\" KEY"), Err(NoSigner::NotListed));
    assert_eq!(
        vouch("a@x namespaces=\"file\" KEY\nb@x KEY"),
        Err(NoSigner::NotListed),
        "find-principals stops at the first line"
    );
    assert_eq!(vouch("a@x namespaces=\"file\" KEY\na@x KEY"), Ok("a@x".into()));
    assert_eq!(vouch("a@x cert-authority KEY"), Err(NoSigner::NotListed));
    assert_eq!(vouch("a@x valid-after=\"20270101Z\" KEY\nb@x KEY"), Ok("b@x".into()));
    assert_eq!(
        vouch("a@x valid-after=\"20260101000001Z\" KEY"),
        Err(NoSigner::NotYetValid {
            line: 1,
            after: jan_2026 + 1
        })
    );
    assert_eq!(
        vouch("a@x valid-after=\"20260101Z\" KEY"),
        Ok("a@x".into()),
        "at or after"
    );
    assert_eq!(
        vouch("a@x valid-before=\"20260101Z\" KEY"),
        Ok("a@x".into()),
        "at or before"
    );
    assert_eq!(
        vouch("a@x valid-before=\"202512312359Z\" KEY"),
        Err(NoSigner::Expired {
            line: 1,
            before: jan_2026 - 60
        })
    );
}
