//! Macros shared by the modules of this crate.
//!
//! `closed_enum!` generates the enums whose values are stored as text in the tool database, where
//! CHECK constraints accept exactly the listed strings. Generating them from one list keeps the
//! variant, its text, `ALL`, `Display`, `FromStr` and serde from ever disagreeing.

/// Declares a closed set of values, each with the exact text stored in the database.
///
/// ```text
/// closed_enum! {
///     /// Docs.
///     pub enum Engine as "engine" {
///         /// Docs.
///         Postgres = "postgres",
///     }
/// }
/// ```
///
/// The literal after `as` names the set in user-facing errors, e.g. `unknown engine "oracle"`.
macro_rules! closed_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident as $kind:literal {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $text:literal
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        $vis enum $name {
            $(
                $(#[$vmeta])*
                #[serde(rename = $text)]
                $variant,
            )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The stored text of every value, in the same order as [`Self::ALL`].
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// What this set is called in user-facing error messages.
            pub const KIND: &'static str = $kind;

            /// The exact text stored in the database and used on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::openapi::one_of(Self::NAMES)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::enums::UnknownVariant;

            /// Accepts exactly the stored text: no trimming, no case folding, because these
            /// strings come from the database or from API clients that must send them verbatim.
            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err($crate::enums::UnknownVariant {
                        kind: $kind,
                        value: s.to_owned(),
                    }),
                }
            }
        }
    };
}
