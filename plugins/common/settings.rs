// Shared by the example plugins (included with `include!`): reading a plugin's `settings` string.

/// Settings are a list separated by commas or white space.
pub fn setting_items(settings: &str) -> impl Iterator<Item = &str> {
    settings
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}
