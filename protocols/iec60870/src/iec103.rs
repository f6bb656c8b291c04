//! IEC 60870-5-103 application layer (protection equipment): ASDU encoding and decoding
//! with function type / information number addressing.
