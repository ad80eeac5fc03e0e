//! Validated values. A `Username` that exists is a valid one, so no code past the edge re-checks it.
//! Lengths count Unicode characters (scalar values), not bytes.
//!
//! Each field rule lives here once: its limits are constants, and [`TextRule`] publishes them,
//! with a pattern built from the same constants, in the OpenAPI document (a table test runs each
//! parser and its published rule on the same inputs).

/// A text field's rule as the OpenAPI document publishes it (`minLength`, `maxLength`, `pattern`;
/// JSON Schema counts characters as this module does).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextRule {
    pub min_chars: Option<usize>,
    pub max_chars: Option<usize>,
    pub pattern: Option<String>,
}

pub const USERNAME_MIN_CHARS: usize = 3;
pub const USERNAME_MAX_CHARS: usize = 30;
/// The longest local part (before the `@`) of an email address.
pub const EMAIL_LOCAL_MAX_CHARS: usize = 64;
pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 128;
pub const DISPLAY_NAME_MAX_CHARS: usize = 50;
pub const BIO_MAX_CHARS: usize = 500;
pub const POST_BODY_MAX_CHARS: usize = 280;

/// The characters Rust's `char::is_whitespace` accepts (what `str::trim` removes), as the body of
/// a pattern's character class.
const WHITE_SPACE: &str =
    r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// The bidirectional embedding, override and isolate controls (U+202A to U+202E, U+2066 to
/// U+2069): they reorder the text after them, which lets one name pose as another.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}
/// [`is_bidi_control`] as the body of a pattern's character class.
const BIDI_CONTROLS: &str = r"\u202a-\u202e\u2066-\u2069";

/// White space and control characters (`char::is_control`), as a character class body: none may
/// appear in an email address.
const SPACE_OR_CONTROL: &str =
    r"\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// A username: 3 to 30 characters of `A-Z a-z 0-9 _`, and not `me` (which names the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let length = raw.chars().count();
        if !(USERNAME_MIN_CHARS..=USERNAME_MAX_CHARS).contains(&length) {
            return Err(format!(
                "must be {USERNAME_MIN_CHARS} to {USERNAME_MAX_CHARS} characters"
            ));
        }
        if !raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err("may contain only letters A-Z and a-z, digits and '_'".into());
        }
        if raw.eq_ignore_ascii_case("me") {
            return Err("'me' is reserved".into());
        }
        Ok(Username(raw.to_owned()))
    }

    /// The rule as published. (`me`, which names the caller in paths, is shorter than any
    /// username.)
    pub fn rule() -> TextRule {
        TextRule {
            min_chars: Some(USERNAME_MIN_CHARS),
            max_chars: Some(USERNAME_MAX_CHARS),
            pattern: Some(format!(
                "^[A-Za-z0-9_]{{{USERNAME_MIN_CHARS},{USERNAME_MAX_CHARS}}}$"
            )),
        }
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
    let plausible = (1..=USERNAME_MAX_CHARS).contains(&raw.len())
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
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
            return Err(format!("must be at most {EMAIL_MAX_CHARS} characters"));
        }
        let plausible = match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.chars().count() <= EMAIL_LOCAL_MAX_CHARS
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

    /// The rule as published.
    pub fn rule() -> TextRule {
        let part = format!("[^@{SPACE_OR_CONTROL}.]+");
        TextRule {
            min_chars: None,
            max_chars: Some(EMAIL_MAX_CHARS),
            pattern: Some(format!(
                r"^[^@{SPACE_OR_CONTROL}]{{1,{EMAIL_LOCAL_MAX_CHARS}}}@{part}(\.{part})+$"
            )),
        }
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
        if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&raw.chars().count()) {
            return Err(format!(
                "must be {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters"
            ));
        }
        Ok(Password(raw.to_owned()))
    }

    /// The rule as published.
    pub fn rule() -> TextRule {
        TextRule {
            min_chars: Some(PASSWORD_MIN_CHARS),
            max_chars: Some(PASSWORD_MAX_CHARS),
            pattern: None,
        }
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

/// A display name: at most 50 characters on one line (no control characters, no bidirectional
/// overrides or isolates), stored as sent.
pub fn parse_display_name(raw: &str) -> Result<String, String> {
    if raw.chars().count() > DISPLAY_NAME_MAX_CHARS {
        return Err(format!(
            "must be at most {DISPLAY_NAME_MAX_CHARS} characters"
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err("must not contain control characters or line breaks".into());
    }
    if raw.chars().any(is_bidi_control) {
        return Err("must not contain bidirectional override or isolate characters".into());
    }
    Ok(raw.to_owned())
}

/// The display name's rule as published.
pub fn display_name_rule() -> TextRule {
    TextRule {
        min_chars: None,
        max_chars: Some(DISPLAY_NAME_MAX_CHARS),
        pattern: Some(format!(r"^[^\x00-\x1f\x7f-\x9f{BIDI_CONTROLS}]*$")),
    }
}

/// A bio: at most 500 characters, stored as sent; line breaks are welcome, NUL and bidirectional
/// overrides or isolates are not.
pub fn parse_bio(raw: &str) -> Result<String, String> {
    if raw.chars().count() > BIO_MAX_CHARS {
        return Err(format!("must be at most {BIO_MAX_CHARS} characters"));
    }
    if raw.contains('\0') {
        return Err("must not contain NUL characters".into());
    }
    if raw.chars().any(is_bidi_control) {
        return Err("must not contain bidirectional override or isolate characters".into());
    }
    Ok(raw.to_owned())
}

/// The bio's rule as published.
pub fn bio_rule() -> TextRule {
    TextRule {
        min_chars: None,
        max_chars: Some(BIO_MAX_CHARS),
        pattern: Some(format!(r"^[^\x00{BIDI_CONTROLS}]*$")),
    }
}

/// The text of a post: 1 to 280 characters after trimming white space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostBody(String);

impl PostBody {
    pub fn parse(raw: &str) -> Result<Self, String> {
        trimmed_text(raw, POST_BODY_MAX_CHARS).map(PostBody)
    }

    /// The rule as published: white space around 1 to 280 characters that neither start nor end
    /// with white space, and no NUL.
    pub fn rule() -> TextRule {
        trimmed_text_rule(POST_BODY_MAX_CHARS)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Longest reason a report may give.
pub const REPORT_REASON_MAX_CHARS: usize = 1_000;

/// Why a user reports another: 1 to 1,000 characters after trimming white space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportReason(String);

impl ReportReason {
    pub fn parse(raw: &str) -> Result<Self, String> {
        trimmed_text(raw, REPORT_REASON_MAX_CHARS).map(ReportReason)
    }

    /// The rule as published, as for a post's body.
    pub fn rule() -> TextRule {
        trimmed_text_rule(REPORT_REASON_MAX_CHARS)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The longest search text (`q` of `GET /users`), in characters after trimming.
pub const SEARCH_MAX_CHARS: usize = 30;

/// The one lower-casing of user search, for the stored `display_name_key` and for the text
/// searched for alike, so that the three backends compare the same strings (no SQL `LOWER`,
/// whose rules differ between them). Leading white space is dropped (a search's text is trimmed,
/// so a display name that begins with a space must be found without it). Then character by
/// character (`char::to_lowercase`): unlike `str::to_lowercase`, whose final-sigma rule looks at
/// what follows a `Σ`, the key of a prefix is then always a prefix of the key of the whole name;
/// and the word-final `ς`, which is `σ` in lower case only, becomes `σ`, so `ΝΊΚΟΣ` finds `Νίκος`
/// and the other way round. Usernames are ASCII, so their `username_key` (ASCII lower-casing) is
/// this key too. (Migration 12 keeps a copy, which a test holds to this one.)
pub fn search_key(text: &str) -> String {
    text.trim_start()
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'ς' { 'σ' } else { c })
        .collect()
}

/// The longest display-name prefix stored for search (`display_name_prefixes`, migration 16), in
/// characters of the key: the longest `q`, whose key is this long unless lower-casing lengthened
/// it (`İ` becomes two characters).
pub const SEARCH_PREFIX_CHARS: usize = SEARCH_MAX_CHARS;

/// The prefixes of a display name's search key that `display_name_prefixes` holds, one per
/// length from 1 to [`SEARCH_PREFIX_CHARS`] characters (fewer for a shorter key), less those that
/// end in white space: `q` is trimmed, so no search asks for them, and MySQL/MariaDB compare
/// strings ignoring trailing spaces, so `"mary "` would be a second `"mary"`. A search for `q`
/// finds the names whose row for `q`'s key exists. (Migration 16 keeps a copy, which a test
/// holds to this one.)
pub fn search_prefixes(key: &str) -> impl Iterator<Item = &str> {
    key.char_indices()
        .take(SEARCH_PREFIX_CHARS)
        .filter(|(_, c)| !c.is_whitespace())
        .map(|(at, c)| &key[..at + c.len_utf8()])
}

/// The smallest string greater than every string that starts with `key`, in code point order (the
/// byte order of UTF-8, which the key columns' binary collations compare by): `key` with its last
/// character incremented (skipping the surrogates, which no string holds), after dropping trailing
/// `U+10FFFF`s, which have no successor. `None` when `key` is all `U+10FFFF` (or empty): then
/// nothing bounds the range from above. So `key <= s < upper` is exactly "s starts with key".
pub fn prefix_upper_bound(key: &str) -> Option<String> {
    let mut chars: Vec<char> = key.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{d7ff}' => Some('\u{e000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The text of a user search: 1 to 30 characters after trimming white space, no control
/// characters (no name holds one). Every character is literal: `%`, `_` and `\` are searched
/// for as themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchPrefix {
    text: String,
    key: String,
}

impl SearchPrefix {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let text = raw.trim();
        if !(1..=SEARCH_MAX_CHARS).contains(&text.chars().count()) {
            return Err(format!(
                "q must be 1 to {SEARCH_MAX_CHARS} characters after trimming white space"
            ));
        }
        if text.chars().any(char::is_control) {
            return Err("q must not contain control characters".into());
        }
        Ok(SearchPrefix {
            text: text.to_owned(),
            key: search_key(text),
        })
    }

    /// The rule as published: white space around 1 to 30 characters that neither start nor end
    /// with white space, and no control character among them.
    pub fn rule() -> TextRule {
        let inner = SEARCH_MAX_CHARS - 2;
        let control = r"\x00-\x1f\x7f-\x9f";
        TextRule {
            min_chars: None,
            max_chars: None,
            pattern: Some(format!(
                r"^[{WHITE_SPACE}]*[^{WHITE_SPACE}{control}](?:[^{control}]{{0,{inner}}}[^{WHITE_SPACE}{control}])?[{WHITE_SPACE}]*$"
            )),
        }
    }

    /// The text searched for, trimmed.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Its [`search_key`]: what `username_key` and `display_name_key` must start with.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The stored display-name prefix to look up ([`search_prefixes`]): the key, or, when
    /// lower-casing made it longer than [`SEARCH_PREFIX_CHARS`] characters, its first that many
    /// less trailing white space (no stored prefix ends in it), with `true` then: the rows found
    /// must still be checked against the whole key.
    pub fn stored_prefix(&self) -> (&str, bool) {
        match self.key.char_indices().nth(SEARCH_PREFIX_CHARS) {
            Some((end, _)) => (self.key[..end].trim_end(), true),
            None => (&self.key, false),
        }
    }
}

/// Text that is 1 to `max` characters after trimming white space, with no NUL; stored trimmed.
fn trimmed_text(raw: &str, max: usize) -> Result<String, String> {
    let text = raw.trim();
    if !(1..=max).contains(&text.chars().count()) {
        return Err(format!(
            "must be 1 to {max} characters after trimming white space"
        ));
    }
    if text.contains('\0') {
        return Err("must not contain NUL characters".into());
    }
    Ok(text.to_owned())
}

/// [`trimmed_text`]'s rule as published: white space around 1 to `max` characters that neither
/// start nor end with white space, and no NUL.
fn trimmed_text_rule(max: usize) -> TextRule {
    let inner = max - 2;
    TextRule {
        min_chars: None,
        max_chars: None,
        pattern: Some(format!(
            r"^[{WHITE_SPACE}]*[^{WHITE_SPACE}\x00](?:[^\x00]{{0,{inner}}}[^{WHITE_SPACE}\x00])?[{WHITE_SPACE}]*$"
        )),
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

    /// What the published rule says of `input`: within its lengths and matching its pattern.
    fn published(rule: &TextRule, input: &str) -> bool {
        let chars = input.chars().count();
        rule.min_chars.is_none_or(|min| chars >= min)
            && rule.max_chars.is_none_or(|max| chars <= max)
            && rule.pattern.as_ref().is_none_or(|pattern| {
                regex::Regex::new(pattern)
                    .unwrap_or_else(|e| panic!("{pattern}: {e}"))
                    .is_match(input)
            })
    }

    /// Every parser and the rule the OpenAPI document publishes for it agree, input by input.
    #[test]
    fn each_parser_and_its_published_rule_agree() {
        let a = |n: usize| "a".repeat(n);
        let username: Vec<String> = [
            "", "ab", "abc", "a_b_C9", "bad name", "ünï", "a-b", "ME_too",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain([a(30), a(31)])
        .collect();
        let email: Vec<String> = [
            "a@b.c",
            "a@b",
            "@b.c",
            "a@@b.c",
            "a b@c.d",
            "a@b..c",
            "a@.b.c",
            "a@b.c.",
            "ü@ß.de",
            "a\u{a0}b@c.d",
            "a\u{85}@c.d",
            "a\u{7f}@c.d",
            "a@b\u{3000}.c",
            "a\u{200b}@b.c",
            "a\tb@c.d",
            "İ@x.com",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain([
            format!("{}@b.c", a(64)),
            format!("{}@b.c", a(65)),
            format!("{}@{}.com", a(64), a(254 - 64 - 5)),
            format!("{}@{}.com", a(64), a(255 - 64 - 5)),
        ])
        .collect();
        let password: Vec<String> = ["", "😀😀😀😀😀😀😀😀", "short"]
            .map(str::to_owned)
            .into_iter()
            .chain([a(7), a(8), a(128), a(129)])
            .collect();
        let display_name: Vec<String> = [
            "",
            "Susan",
            "a\nb",
            "tab\t",
            "\u{85}",
            "\u{9f}",
            "\u{a0}",
            "😀",
            "\u{7f}",
            "\0",
            "evil\u{202e}gnp.exe",
            "\u{2066}x\u{2069}",
            "\u{2029}",
            "\u{200f}",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain([a(50), a(51)])
        .collect();
        let bio: Vec<String> = [
            "",
            "line\nbreak",
            "nul\0",
            "\u{85}",
            "a\u{202a}b",
            "\u{2069}",
            "\u{2065}",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain([a(500), a(501)])
        .collect();
        let body: Vec<String> = [
            "",
            " ",
            "hi",
            "  hi  ",
            "a\0b",
            "\0",
            "\u{3000}x\u{3000}",
            "x\u{2028}y",
            "\u{200b}",
            "\u{1680}",
            "\u{85}x",
            "\n\t x \r\n",
            "\u{feff}",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain([
            a(280),
            a(281),
            format!("  {}\n", a(280)),
            format!("{} {}", a(139), a(140)),
            format!("{} {}", a(140), a(140)),
            "😀".repeat(280),
            "😀".repeat(281),
        ])
        .collect();

        let reason: Vec<String> = body
            .iter()
            .cloned()
            .chain([a(1000), a(1001), format!(" {} ", a(1000))])
            .collect();

        let search: Vec<String> = [
            "",
            " ",
            "a",
            " a ",
            "a b",
            "100%_\\",
            "a\0",
            "a\nb",
            "\ta\n",
            "\u{85}a",
            "a\u{85}b",
            "\u{3000}x\u{3000}",
            "\u{202e}",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain([
            a(30),
            a(31),
            format!("  {}\n", a(30)),
            format!("{} {}", a(14), a(15)),
            format!("{} {}", a(15), a(15)),
            "😀".repeat(30),
            "😀".repeat(31),
        ])
        .collect();

        type Parser = fn(&str) -> bool;
        let table: [(&str, TextRule, &Vec<String>, Parser); 8] = [
            ("username", Username::rule(), &username, |s| {
                Username::parse(s).is_ok()
            }),
            ("email", Email::rule(), &email, |s| Email::parse(s).is_ok()),
            ("password", Password::rule(), &password, |s| {
                Password::parse(s).is_ok()
            }),
            ("display_name", display_name_rule(), &display_name, |s| {
                parse_display_name(s).is_ok()
            }),
            ("bio", bio_rule(), &bio, |s| parse_bio(s).is_ok()),
            ("body", PostBody::rule(), &body, |s| {
                PostBody::parse(s).is_ok()
            }),
            ("reason", ReportReason::rule(), &reason, |s| {
                ReportReason::parse(s).is_ok()
            }),
            ("q", SearchPrefix::rule(), &search, |s| {
                SearchPrefix::parse(s).is_ok()
            }),
        ];
        for (field, rule, inputs, parses) in table {
            let mut accepted = 0;
            for input in inputs {
                assert_eq!(
                    parses(input),
                    published(&rule, input),
                    "{field}: parser and published rule disagree on {input:?}"
                );
                accepted += usize::from(parses(input));
            }
            assert!(
                accepted > 0 && accepted < inputs.len(),
                "{field}: the inputs test both sides"
            );
        }
    }

    #[test]
    fn a_search_prefix_is_trimmed_and_keyed_by_lower_casing_each_character() {
        let prefix = SearchPrefix::parse("  ΟΔΥΣ \t").unwrap();
        assert_eq!(prefix.as_str(), "ΟΔΥΣ");
        // Not the word-final ς of `str::to_lowercase`: the key of a prefix is a prefix of the key.
        assert_eq!(prefix.key(), "οδυσ");
        assert_eq!(search_key("ÉLODIE Ärger"), "élodie ärger");
        assert_eq!(search_key("İx"), "i\u{307}x");
        // The final sigma in either case, and a name that begins with white space.
        assert_eq!(search_key("ΝΊΚΟΣ"), "νίκοσ");
        assert_eq!(search_key("Νίκος"), "νίκοσ");
        assert_eq!(search_key(" \u{a0}Bob"), "bob");
        assert!(SearchPrefix::parse(&"é".repeat(30)).is_ok());
        assert!(SearchPrefix::parse(&"é".repeat(31)).is_err());
        assert!(SearchPrefix::parse(" \t ").is_err());
        assert!(SearchPrefix::parse("a\0").is_err());
    }

    #[test]
    fn the_key_of_a_prefix_is_a_prefix_of_the_key_of_the_whole_name() {
        for name in [
            "ΟΔΥΣΣΕΑΣ",
            "İstanbul",
            "Straße",
            "ǅemal",
            "ÉLODIE",
            "ﬃ",
            "Σ Σ",
        ] {
            let key = search_key(name);
            let mut prefix = String::new();
            for c in name.chars() {
                prefix.push(c);
                assert!(
                    key.starts_with(&search_key(&prefix)),
                    "{name}: {prefix} -> {} is not a prefix of {key}",
                    search_key(&prefix)
                );
            }
        }
    }

    #[test]
    fn a_display_name_is_stored_under_each_prefix_of_its_key_up_to_thirty_characters() {
        assert_eq!(
            search_prefixes("abc").collect::<Vec<_>>(),
            ["a", "ab", "abc"]
        );
        assert_eq!(
            search_prefixes("é\u{307}ß").collect::<Vec<_>>(),
            ["é", "é\u{307}", "é\u{307}ß"]
        );
        assert_eq!(search_prefixes("").count(), 0);
        // None ends in white space (a trimmed `q` never does).
        assert_eq!(
            search_prefixes("al  b\u{a0}c").collect::<Vec<_>>(),
            ["a", "al", "al  b", "al  b\u{a0}c"]
        );
        let long = "x".repeat(40);
        let stored: Vec<&str> = search_prefixes(&long).collect();
        assert_eq!(stored.len(), SEARCH_PREFIX_CHARS);
        assert_eq!(stored.last().unwrap().chars().count(), SEARCH_PREFIX_CHARS);
    }

    #[test]
    fn a_search_finds_a_name_through_its_stored_prefixes_exactly_when_the_key_starts_with_it() {
        // Thirty `İ` have a key of sixty characters: looked up by its first thirty, then checked.
        let long = SearchPrefix::parse(&"İ".repeat(30)).unwrap();
        let (stored, truncated) = long.stored_prefix();
        assert_eq!(long.key().chars().count(), 60);
        assert_eq!(
            (stored.chars().count(), truncated),
            (SEARCH_PREFIX_CHARS, true)
        );
        let short = SearchPrefix::parse(&"é".repeat(30)).unwrap();
        assert_eq!(short.stored_prefix(), ("é".repeat(30).as_str(), false));
        // A cut at thirty characters that ends in a space.
        let spaced = format!("{}a b", "İ".repeat(14));
        let names = [
            spaced.clone(),
            format!("{}a bc", "İ".repeat(14)),
            format!("{}a c", "İ".repeat(14)),
            "İ".repeat(30),
            format!("{}x", "İ".repeat(15)),
            "İ".repeat(16),
            "é".repeat(45),
            "é".repeat(29),
            "Mary Sue".to_owned(),
            "Mary  Sue ".to_owned(),
        ];
        let searches = [
            spaced.clone(),
            "İ".repeat(30),
            "İ".repeat(15),
            "İ".repeat(16),
            "é".repeat(30),
            "é".repeat(29),
            "mary s".to_owned(),
            "mary  s".to_owned(),
            "mary".to_owned(),
            "i".to_owned(),
        ];
        for name in &names {
            let key = search_key(name);
            for q in &searches {
                let prefix = SearchPrefix::parse(q).unwrap();
                let (stored, truncated) = prefix.stored_prefix();
                let found = search_prefixes(&key).any(|p| p == stored)
                    && (!truncated || key.starts_with(prefix.key()));
                assert_eq!(found, key.starts_with(prefix.key()), "{name:?} {q:?}");
                if *name == spaced && q == &spaced {
                    assert!(found && truncated, "the spaced cut is itself found");
                }
            }
        }
    }

    #[test]
    fn the_upper_bound_of_a_prefix_bounds_exactly_the_strings_that_start_with_it() {
        assert_eq!(prefix_upper_bound("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_upper_bound("a_").as_deref(), Some("a`"));
        assert_eq!(
            prefix_upper_bound("a\u{d7ff}").as_deref(),
            Some("a\u{e000}")
        );
        assert_eq!(prefix_upper_bound("a\u{10ffff}").as_deref(), Some("b"));
        assert_eq!(
            prefix_upper_bound("ab\u{10ffff}\u{10ffff}").as_deref(),
            Some("ac")
        );
        assert_eq!(prefix_upper_bound("\u{10ffff}"), None);
        assert_eq!(prefix_upper_bound(""), None);
        // Against `starts_with`, over strings around the edges (Rust's `str` order is code point
        // order, as the key columns' binary collations are).
        let alphabet = [
            "",
            "a",
            "b",
            "`",
            "~",
            "\u{7f}",
            "\u{d7ff}",
            "\u{e000}",
            "\u{10ffff}",
            "é",
        ];
        let mut strings = Vec::new();
        for x in alphabet {
            for y in alphabet {
                for z in alphabet {
                    strings.push(format!("{x}{y}{z}"));
                }
            }
        }
        for prefix in strings.iter().filter(|s| !s.is_empty()) {
            let upper = prefix_upper_bound(prefix);
            for s in &strings {
                let in_range = s.as_str() >= prefix.as_str()
                    && upper.as_deref().is_none_or(|u| s.as_str() < u);
                assert_eq!(in_range, s.starts_with(prefix.as_str()), "{prefix:?} {s:?}");
            }
        }
    }

    #[test]
    fn post_bodies_count_characters_not_bytes() {
        assert!(PostBody::parse(&"😀".repeat(280)).is_ok());
        assert!(PostBody::parse(&"😀".repeat(281)).is_err());
        assert_eq!(PostBody::parse("  hi  ").unwrap().as_str(), "hi");
        assert!(PostBody::parse(" \n\t ").is_err());
    }
}
