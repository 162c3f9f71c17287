//! The one macro behind every enumeration that travels on the wire: opcodes, statuses and the
//! EME enums. Each gets its stable wire value as the discriminant, `ALL` in wire order,
//! `to_wire` / `from_wire` (unknown values are `None`, never a catch-all) and `name`; the EME
//! enums also get their exact EME string (`as_str`, [`core::str::FromStr`], `Display`).

/// Declares a wire enumeration.
///
/// ```text
/// wire_enum! { /// docs
///     pub enum Name: u16 { /// docs
///         Variant = 0x0001, ... } }
/// wire_enum! { /// docs
///     pub enum Name: u8, eme "WebIDLName" { /// docs
///         Variant = 1 => "eme-string", ... } }
/// ```
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident: $repr:ty {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr($repr)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $wire, )+
        }

        impl $name {
            /// Every variant, in table order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable wire value.
            pub const fn to_wire(self) -> $repr {
                self as $repr
            }

            /// Decodes a wire value; `None` for values no variant has.
            pub const fn from_wire(value: $repr) -> Option<Self> {
                match value {
                    $( $wire => Some($name::$variant), )+
                    _ => None,
                }
            }

            /// The variant's name, for logs and documents.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => stringify!($variant), )+
                }
            }
        }
    };
    (
        $(#[$meta:meta])*
        pub enum $name:ident: $repr:ty, eme $eme_name:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal => $s:literal, )+
        }
    ) => {
        wire_enum! {
            $(#[$meta])*
            pub enum $name: $repr {
                $( $(#[$vmeta])* $variant = $wire, )+
            }
        }

        impl $name {
            /// The EME string of this variant.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $s, )+
                }
            }
        }

        impl core::str::FromStr for $name {
            type Err = $crate::eme::UnknownEmeString;

            /// Parses the exact (case-sensitive) EME string.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $s => Ok($name::$variant), )+
                    _ => Err($crate::eme::UnknownEmeString { what: $eme_name }),
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
