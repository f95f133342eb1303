//! The cloud-config document (`user_data`) of a [`Rendered`] server.
//!
//! The YAML is written by hand rather than by a serializer: the document has a fixed shape, the
//! maintained YAML crates either do not choose block scalars for file contents (which keeps the
//! files readable in a plan and in the snapshots) or do not promise a stable output, and every
//! scalar here is either a JSON string (YAML's double-quoted style is a superset of JSON's) or a
//! literal block scalar checked to round-trip.

use super::{File, Rendered};

/// The `#cloud-config` document: apt sources, packages, the SSH host key and login key, files
/// (those owned by a user a package creates are written after the packages, `defer: true`) and
/// the first-boot commands.
pub fn cloud_config(rendered: &Rendered) -> String {
    let mut out = String::from("#cloud-config\n");
    if !rendered.apt_sources.is_empty() {
        out.push_str("apt:\n  sources:\n");
        for source in &rendered.apt_sources {
            out.push_str(&format!("    {}:\n", quoted(&source.name)));
            out.push_str(&format!("      source: {}\n", quoted(&source.source)));
            out.push_str(&format!("      key: {}\n", scalar(&source.key, 8)));
        }
    }
    out.push_str("package_update: true\n");
    if !rendered.packages.is_empty() {
        out.push_str("packages:\n");
        for package in &rendered.packages {
            out.push_str(&format!("  - {}\n", quoted(package)));
        }
    }
    if let Some(ssh) = &rendered.ssh {
        // The host key terrace generated, so that terrace can pin it from the first connection
        // on: the image's keys are deleted, and of the key types cloud-init would make, only
        // ed25519 is asked for, which the given key already is.
        out.push_str("ssh_deletekeys: true\nssh_genkeytypes: [ed25519]\nssh_keys:\n");
        out.push_str(&format!("  ed25519_private: \"{}\"\n", ssh.host_private_key_escaped));
        out.push_str(&format!("  ed25519_public: {}\n", quoted(&ssh.host_public_key)));
    }
    if !rendered.files.is_empty() || rendered.ssh.is_some() {
        out.push_str("write_files:\n");
        if let Some(ssh) = &rendered.ssh {
            // terrace's login key is added to root's, beside the keys Hetzner puts there.
            out.push_str("  - path: \"/root/.ssh/authorized_keys\"\n");
            out.push_str("    owner: \"root:root\"\n    permissions: \"0600\"\n    append: true\n");
            out.push_str(&format!("    content: {}\n", quoted(&format!("{}\n", ssh.authorized_key.trim_end()))));
        }
        for file in &rendered.files {
            write_file(&mut out, file);
        }
    }
    if !rendered.runcmd.is_empty() {
        out.push_str("runcmd:\n");
        for command in &rendered.runcmd {
            out.push_str(&format!("  - {}\n", quoted(command)));
        }
    }
    out
}

fn write_file(out: &mut String, file: &File) {
    out.push_str(&format!("  - path: {}\n", quoted(&file.path)));
    out.push_str(&format!("    owner: {}\n", quoted(&file.owner)));
    out.push_str(&format!("    permissions: {}\n", quoted(&file.permissions)));
    if file.deferred() {
        out.push_str("    defer: true\n");
    }
    out.push_str(&format!("    content: {}\n", scalar(&file.content, 6)));
}

/// A double-quoted scalar. Every character YAML does not take as printable, or reads as a line
/// break, is escaped.
fn quoted(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if unprintable(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Characters that may not appear raw in a YAML scalar, or that YAML reads as line breaks.
fn unprintable(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// A multi-line value as a literal block scalar indented by `indent` spaces, when it reads back
/// exactly; otherwise a double-quoted scalar. The block's chomping indicator keeps the trailing
/// newlines as they are (`|-` none, `|` one, `|+` more).
fn scalar(value: &str, indent: usize) -> String {
    let first_line = value.lines().find(|line| !line.is_empty());
    let block = first_line.is_some_and(|line| !line.starts_with([' ', '\t']))
        && value.chars().all(|c| c == '\n' || c == '\t' || !unprintable(c));
    if !block {
        return quoted(value);
    }
    let chomp = if !value.ends_with('\n') {
        "-"
    } else if value.ends_with("\n\n") {
        "+"
    } else {
        ""
    };
    let mut out = format!("|{chomp}");
    let body = value.strip_suffix('\n').unwrap_or(value);
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&" ".repeat(indent));
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::scalar;

    #[test]
    fn block_scalars_keep_trailing_newlines() {
        assert_eq!(scalar("a\nb\n", 2), "|\n  a\n  b");
        assert_eq!(scalar("a", 2), "|-\n  a");
        assert_eq!(scalar("a\n\n", 2), "|+\n  a\n");
        assert_eq!(scalar(" indented\n", 2), "\" indented\\n\"");
        assert_eq!(scalar("", 2), "\"\"");
        assert_eq!(scalar("cr\r\n", 2), "\"cr\\u000d\\n\"");
    }
}
