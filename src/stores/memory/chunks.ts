// Per-slot columns live in fixed-size chunks: growing never copies them or leaves a freed
// double-size buffer behind, and at most one chunk is partly empty.

/** log2 of the slots per chunk. */
export const CHUNK_BITS = 13;
/** Slots per chunk. */
export const CHUNK = 1 << CHUNK_BITS;
/** A slot's position inside its chunk is `slot & CHUNK_MASK`; its chunk is `slot >>> CHUNK_BITS`. */
export const CHUNK_MASK = CHUNK - 1;
