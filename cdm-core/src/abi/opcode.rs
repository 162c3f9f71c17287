//! The opcode table: the one place every operation of the ABI is listed.

macro_rules! opcode_table {
    ($( $(#[$doc:meta])* $name:ident = $value:literal, )*) => {
        /// Every operation of the ABI, with its stable wire value.
        ///
        /// Values are grouped by area in the high byte: `0x00xx` the CDM as a whole,
        /// `0x01xx` session lifetime, `0x02xx` licenses and keys, `0x03xx` decryption,
        /// `0x04xx` secure buffers. Unknown values are rejected, never mapped to a catch-all.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum Opcode {
            $( $(#[$doc])* $name = $value, )*
        }

        impl Opcode {
            /// Every opcode, in table order.
            pub const ALL: &'static [Opcode] = &[$(Opcode::$name,)*];

            /// The wire value.
            pub const fn to_wire(self) -> u16 {
                self as u16
            }

            /// Decodes a wire value; `None` for values not in the table.
            pub const fn from_wire(value: u16) -> Option<Opcode> {
                match value {
                    $( $value => Some(Opcode::$name), )*
                    _ => None,
                }
            }

            /// The opcode's name, for logs.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Opcode::$name => stringify!($name), )*
                }
            }
        }
    };
}

opcode_table! {
    /// Engine, robustness levels, limits and ABI version of the secure world.
    GetCapabilities = 0x0001,
    /// Opens a session for a key system and robustness level; answers the handle.
    OpenSession = 0x0100,
    /// Closes a session and wipes its keys.
    CloseSession = 0x0101,
    /// EME `generateRequest`: init data in, license-request message out.
    GenerateRequest = 0x0200,
    /// EME `update`: a license (or release acknowledgement) in, key statuses out.
    Update = 0x0201,
    /// EME `load`: restores a persistent-license session.
    Load = 0x0202,
    /// EME `remove`: releases the keys, answers the record of license destruction.
    Remove = 0x0203,
    /// Key statuses and expiration of a session.
    GetKeyStatuses = 0x0204,
    /// Decrypts one sample held in the shared buffer.
    Decrypt = 0x0300,
    /// Hands a secure buffer to the secure output sink; answers its digest.
    RenderSecureBuffer = 0x0400,
    /// Frees a secure buffer without rendering it.
    ReleaseSecureBuffer = 0x0401,
}
