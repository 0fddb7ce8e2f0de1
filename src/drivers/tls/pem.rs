//! Splits PEM text into its blocks and decodes each one's base64, so the
//! certificates and the key are parsed from DER on their own (no prompt for
//! a passphrase, no guessing) and an error can point at a line number
//! instead of quoting a line: a key file's lines are the secret.

use base64::Engine as _;

/// What a block holds, from its `-----BEGIN ...-----` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Certificate,
    /// Unencrypted: PKCS#8 (`PRIVATE KEY`) or traditional (`RSA PRIVATE KEY`, ...).
    Key,
    /// PKCS#8 `ENCRYPTED PRIVATE KEY` or a traditional key with `Proc-Type: 4,ENCRYPTED`.
    EncryptedKey,
    /// Anything else (`EC PARAMETERS`, `TRUSTED CERTIFICATE`, ...): ignored.
    Other,
}

/// One decoded block.
pub(super) struct Block {
    pub kind: Kind,
    /// The 1-based line of its BEGIN line.
    pub line: usize,
    pub der: Vec<u8>,
}

struct Open {
    label: String,
    line: usize,
    encrypted: bool,
    body: String,
}

/// The blocks of `text`, in order; text outside blocks (e.g. `openssl x509
/// -text` output) is ignored. The error is the detail of a "not PEM" error.
pub(super) fn blocks(text: &str) -> Result<Vec<Block>, String> {
    if text.trim().is_empty() {
        return Err("it is empty".into());
    }
    let mut out = Vec::new();
    let mut open: Option<Open> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let n = i + 1;
        match open.as_mut() {
            None => {
                if let Some(label) = marker(line, "BEGIN") {
                    let label = label.to_string();
                    open = Some(Open {
                        label,
                        line: n,
                        encrypted: false,
                        body: String::new(),
                    });
                }
            }
            Some(o) => {
                if let Some(label) = marker(line, "END") {
                    if label != o.label {
                        return Err(format!(
                            "line {n}: an END line that does not close the block begun at line {}",
                            o.line
                        ));
                    }
                    let o = open.take().expect("a block is open");
                    out.push(finish(o)?);
                } else if marker(line, "BEGIN").is_some() {
                    return Err(format!(
                        "line {n}: a block begins before the one begun at line {} ends",
                        o.line
                    ));
                } else if line.contains(':') {
                    // An RFC 1421 header, e.g. `Proc-Type: 4,ENCRYPTED`.
                    o.encrypted |= line.starts_with("Proc-Type:") && line.contains("ENCRYPTED");
                } else {
                    o.body.push_str(line);
                }
            }
        }
    }
    if let Some(o) = open {
        return Err(format!("line {}: a block begins there but never ends", o.line));
    }
    if out.is_empty() {
        return Err("no \"-----BEGIN\" line (a DER file? convert it with `openssl x509 -inform der`)".into());
    }
    Ok(out)
}

/// The label of a `-----BEGIN LABEL-----` (or END) line.
fn marker<'a>(line: &'a str, which: &str) -> Option<&'a str> {
    line.strip_prefix("-----")?
        .strip_suffix("-----")?
        .strip_prefix(which)?
        .strip_prefix(' ')
}

fn finish(o: Open) -> Result<Block, String> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(o.body.as_bytes())
        .map_err(|_| format!("line {}: the block begun there is not valid base64", o.line))?;
    let kind = match o.label.as_str() {
        "CERTIFICATE" => Kind::Certificate,
        "ENCRYPTED PRIVATE KEY" => Kind::EncryptedKey,
        l if l.ends_with("PRIVATE KEY") && o.encrypted => Kind::EncryptedKey,
        l if l.ends_with("PRIVATE KEY") => Kind::Key,
        _ => Kind::Other,
    };
    Ok(Block {
        kind,
        line: o.line,
        der,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_split_and_labelled_and_text_around_them_is_ignored() {
        let text = "Certificate:\n  Data: ...\n-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n\
                    -----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n\
                    -----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAEC\n-----END RSA PRIVATE KEY-----\n\
                    -----BEGIN PRIVATE KEY-----\nAA\nEC\n-----END PRIVATE KEY-----\n";
        let got: Vec<(Kind, usize, Vec<u8>)> = blocks(text)
            .unwrap()
            .into_iter()
            .map(|b| (b.kind, b.line, b.der))
            .collect();
        assert_eq!(
            got,
            vec![
                (Kind::Certificate, 3, vec![0, 1, 2]),
                (Kind::Other, 6, vec![6, 8, 42, 134, 72, 206, 61, 3, 1, 7]),
                (Kind::EncryptedKey, 9, vec![0, 1, 2]),
                (Kind::Key, 15, vec![0, 1, 2]),
            ]
        );
    }

    #[test]
    fn broken_pem_is_refused_with_a_line_number_and_no_content() {
        let cases = [
            ("", "it is empty"),
            ("  \n", "it is empty"),
            ("hello secret", "no \"-----BEGIN\" line"),
            (
                "-----BEGIN CERTIFICATE-----\nAAEC\n",
                "line 1: a block begins there but never ends",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAEC\n-----END PRIVATE KEY-----\n",
                "line 3: an END line",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\n-----BEGIN PRIVATE KEY-----\n",
                "line 2: a block begins before",
            ),
            (
                "x\n-----BEGIN PRIVATE KEY-----\nnot*base64\n-----END PRIVATE KEY-----\n",
                "line 2: the block begun there is not valid base64",
            ),
        ];
        for (text, want) in cases {
            let err = blocks(text).err().unwrap_or_else(|| panic!("{text:?} parsed"));
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(!err.contains("secret") && !err.contains("base64\n"), "{err}");
        }
    }
}
