//! Validated values. A `Username` that exists is a valid one, so no code past the edge re-checks it.
//! Lengths count Unicode characters (scalar values), not bytes.

/// A username: 3 to 30 characters of `A-Z a-z 0-9 _`, and not `me` (which names the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let length = raw.chars().count();
        if !(3..=30).contains(&length) {
            return Err("must be 3 to 30 characters".into());
        }
        if !raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err("may contain only letters A-Z and a-z, digits and '_'".into());
        }
        if raw.eq_ignore_ascii_case("me") {
            return Err("'me' is reserved".into());
        }
        Ok(Username(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive key under which the username is unique.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// The key to look a username up by, or `None` when the text cannot be anybody's username (so the
/// lookup can answer "not found" without sending odd bytes, such as NUL, to the database).
pub fn username_lookup_key(raw: &str) -> Option<String> {
    let plausible =
        (1..=30).contains(&raw.len()) && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    plausible.then(|| raw.to_ascii_lowercase())
}

/// The longest an email's key can be: full case folding turns one character into at most three.
pub const EMAIL_KEY_MAX_CHARS: usize = EMAIL_MAX_CHARS * 3;

/// The longest email address, in characters.
pub const EMAIL_MAX_CHARS: usize = 254;

/// A plausible email address of at most 254 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw;
        if email.chars().count() > EMAIL_MAX_CHARS {
            return Err("must be at most 254 characters".into());
        }
        let plausible = match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.chars().count() <= 64
                    && !domain.contains('@')
                    && domain.contains('.')
                    && domain.split('.').all(|label| !label.is_empty())
                    && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            }
            None => false,
        };
        if !plausible {
            return Err("must be an email address such as name@example.com".into());
        }
        Ok(Email(email.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive key under which the address is unique: its Unicode case folding
    /// (so `xσ@…`, `xς@…` and `XΣ@…` are one address). Folding can lengthen text, up to
    /// [`EMAIL_KEY_MAX_CHARS`] characters for the longest address; the column holds that many.
    pub fn key(&self) -> String {
        unicase::UniCase::new(self.0.as_str()).to_folded_case()
    }
}

/// The key to look an email up by, or `None` when the text cannot be a registered address.
pub fn email_lookup_key(raw: &str) -> Option<String> {
    Email::parse(raw).ok().map(|email| email.key())
}

/// A password of 8 to 128 characters. Never stored, only hashed.
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if !(8..=128).contains(&raw.chars().count()) {
            return Err("must be 8 to 128 characters".into());
        }
        Ok(Password(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

/// A display name: at most 50 characters on one line (no control characters), stored as sent.
pub fn parse_display_name(raw: &str) -> Result<String, String> {
    if raw.chars().count() > 50 {
        return Err("must be at most 50 characters".into());
    }
    if raw.chars().any(char::is_control) {
        return Err("must not contain control characters or line breaks".into());
    }
    Ok(raw.to_owned())
}

/// A bio: at most 500 characters, stored as sent; line breaks are welcome, NUL is not.
pub fn parse_bio(raw: &str) -> Result<String, String> {
    if raw.chars().count() > 500 {
        return Err("must be at most 500 characters".into());
    }
    if raw.contains('\0') {
        return Err("must not contain NUL characters".into());
    }
    Ok(raw.to_owned())
}

/// The text of a post: 1 to 280 characters after trimming white space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostBody(String);

impl PostBody {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let body = raw.trim();
        if !(1..=280).contains(&body.chars().count()) {
            return Err("must be 1 to 280 characters after trimming white space".into());
        }
        if body.contains('\0') {
            return Err("must not contain NUL characters".into());
        }
        Ok(PostBody(body.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_keyed_case_insensitively() {
        let name = Username::parse("Susan_1").unwrap();
        assert_eq!(name.as_str(), "Susan_1");
        assert_eq!(name.key(), "susan_1");
        assert_eq!(username_lookup_key("SUSAN_1").as_deref(), Some("susan_1"));
    }

    #[test]
    fn lookups_of_impossible_usernames_never_reach_the_database() {
        assert_eq!(username_lookup_key("bad\0name"), None);
        assert_eq!(username_lookup_key(""), None);
        assert_eq!(username_lookup_key(&"a".repeat(31)), None);
    }

    #[test]
    fn emails_are_keyed_by_case_folding_not_lower_casing() {
        let key = |raw: &str| Email::parse(raw).unwrap().key();
        assert_eq!(key("xσ@example.com"), key("xς@example.com"));
        assert_eq!(key("XΣ@EXAMPLE.COM"), key("xς@example.com"));
        assert_eq!(key("Straße@example.com"), key("STRASSE@example.com"));
        assert_ne!(key("a@example.com"), key("b@example.com"));
        assert_eq!(
            email_lookup_key("XΣ@Example.com"),
            Some(key("xσ@example.com"))
        );
    }

    /// The column is as wide as the longest key; no character folds to more than three.
    #[test]
    fn no_character_folds_to_more_than_three() {
        let longest = (0..=u32::from(char::MAX))
            .filter_map(char::from_u32)
            .map(|c| {
                unicase::UniCase::new(c.to_string())
                    .to_folded_case()
                    .chars()
                    .count()
            })
            .max()
            .unwrap();
        assert_eq!(longest, 3);
        let widest = format!("{}@{}.com", "\u{390}".repeat(64), "\u{390}".repeat(185));
        assert_eq!(widest.chars().count(), EMAIL_MAX_CHARS);
        assert_eq!(
            Email::parse(&widest).unwrap().key().chars().count(),
            64 * 3 + 1 + 185 * 3 + 4
        );
    }

    #[test]
    fn post_bodies_count_characters_not_bytes() {
        assert!(PostBody::parse(&"😀".repeat(280)).is_ok());
        assert!(PostBody::parse(&"😀".repeat(281)).is_err());
        assert_eq!(PostBody::parse("  hi  ").unwrap().as_str(), "hi");
        assert!(PostBody::parse(" \n\t ").is_err());
    }
}
