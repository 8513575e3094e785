// Package weights reads model weights stored in the safetensors format.
//
// A safetensors file is an 8-byte little-endian header length N, N bytes of
// JSON describing every tensor (dtype, shape and byte range), then the packed
// tensor data. [Open] maps a file read-only and validates the whole header
// before handing out any tensor, so a corrupt or hostile file yields an error
// rather than a panic or an out-of-range slice. [OpenCheckpoint] opens a
// Hugging Face model directory, either a single model.safetensors or a
// sharded one described by model.safetensors.index.json.
//
// Tensors alias the mapping: their bytes are valid until the owning [File] or
// [Checkpoint] is closed, and must never be written to. [Write] and
// [WriteFile] produce files this package (and other safetensors readers) can
// load, which is how tests and tools build synthetic models.
package weights
