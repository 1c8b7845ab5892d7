//! Named transform presets (`PROGIMAGE_PRESETS="thumb=w_200,h_200,fit_cover;hero=w_1600"`)
//! and presets-only mode, where a URL may name a preset but not spell out transforms —
//! so the set of variants anyone can make the server render (stored variants, direct
//! transforms, fetches, ASCII) is fixed by configuration.

use std::collections::HashMap;

use crate::error::Error;
use crate::imaging::Spec;

#[derive(Default)]
pub struct Presets {
    by_name: HashMap<String, Spec>,
    only: bool,
}

impl Presets {
    /// Parse `name=spec;name=spec`. Invalid presets stop the server at start-up.
    pub fn parse(text: &str, only: bool) -> anyhow::Result<Presets> {
        let mut by_name = HashMap::new();
        for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, spec) = entry
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("preset {entry:?} is not name=spec"))?;
            let name = name.trim();
            if name.is_empty() || name.contains(['_', ',', '.', '/']) {
                anyhow::bail!("preset name {name:?} must not be empty or contain _ , . /");
            }
            let spec = Spec::parse_path(spec.trim())
                .map_err(|e| anyhow::anyhow!("preset {name:?}: {e}"))?;
            if by_name.insert(name.to_owned(), spec).is_some() {
                anyhow::bail!("preset {name:?} is defined twice");
            }
        }
        if only && by_name.is_empty() {
            anyhow::bail!("PROGIMAGE_PRESETS_ONLY is set but PROGIMAGE_PRESETS defines none");
        }
        Ok(Presets { by_name, only })
    }

    /// The spec of a variant URL: a preset name or a path spec (if any), then the query's
    /// transforms. In presets-only mode anything but a bare preset or no transform at all
    /// is refused.
    pub fn resolve(
        &self,
        path_spec: Option<&str>,
        query: Vec<(String, String)>,
    ) -> Result<Spec, Error> {
        let preset = path_spec.and_then(|p| self.by_name.get(p));
        let base = match (preset, path_spec) {
            (Some(spec), _) => spec.clone(),
            (None, Some(path)) => Spec::parse_path(path)?,
            (None, None) => Spec::default(),
        };
        let query_given = query
            .iter()
            .any(|(k, _)| !crate::imaging::is_non_transform_key(k));
        let spec = base.merge(query)?;
        if self.only && !spec.is_identity() && (preset.is_none() || query_given) {
            let mut names: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
            names.sort_unstable();
            return Err(Error::BadTransform(format!(
                "this server only renders presets: {}",
                names.join(", ")
            )));
        }
        Ok(spec)
    }

    /// For routes that take transforms but no preset names (ASCII): in presets-only mode
    /// only the untransformed default is allowed.
    pub fn check_free_form(&self, spec: &Spec) -> Result<(), Error> {
        if self.only && !spec.is_identity() {
            return Err(Error::BadTransform(
                "this server only renders presets; this route takes no transforms".into(),
            ));
        }
        Ok(())
    }

    /// Whether `name` is a configured preset.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn presets_resolve_and_only_mode_refuses_the_rest() {
        let open = Presets::parse("thumb=w_200,h_200,fit_cover; hero=w_1600,q_80", false).unwrap();
        let thumb = open.resolve(Some("thumb"), vec![]).unwrap();
        assert_eq!(thumb.canonical(), "w_200,h_200,fit_cover");
        assert_eq!(
            open.resolve(Some("w_5"), pairs(&[("h", "6")]))
                .unwrap()
                .canonical(),
            "w_5,h_6"
        );

        let only = Presets::parse("thumb=w_200", true).unwrap();
        assert!(only.resolve(Some("thumb"), vec![]).is_ok());
        assert!(
            only.resolve(None, vec![]).is_ok(),
            "plain conversion stays allowed"
        );
        assert!(only.resolve(None, pairs(&[("sig", "x")])).is_ok());
        assert!(only.resolve(Some("w_200"), vec![]).is_err());
        assert!(only.resolve(None, pairs(&[("w", "200")])).is_err());
        assert!(only.resolve(Some("thumb"), pairs(&[("q", "5")])).is_err());
    }

    #[test]
    fn bad_presets_fail_at_start_up() {
        assert!(Presets::parse("thumb", false).is_err());
        assert!(Presets::parse("thumb=w_0", false).is_err());
        assert!(Presets::parse("a_b=w_1", false).is_err());
        assert!(Presets::parse("", true).is_err());
        assert!(Presets::parse("a=w_10;a=w_20", false).is_err());
        assert!(Presets::parse("", false).is_ok());
    }
}
