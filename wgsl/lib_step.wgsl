{{/*
lib_step: the step uniform, one buffer written by the host once per step
and bound by every kernel that needs a position, a cache slot or the number
of rows. A step is a list of rows (tokens): a decode step has one row per
sequence, each in its own KV cache slot at its own position; a prefill step
has consecutive positions of one slot.

  struct Step {
      rows:  u32,                        // tokens in this step
      keys:  u32,                        // the most cache rows any row attends to
      _pad:  2 × u32,
      row:   array<vec4<u32>, MAXROWS>,  // per row: (slot, pos, 0, 0)
  }

Use: {{template "step" .}} in a shader whose template variables have a
MaxRows field, then `@group(0) @binding(N) var<uniform> step: Step;`.
Go mirror: kernels.Step (gpu/kernels/step.go).
*/}}
{{define "step"}}
struct Step {
    rows: u32,
    keys: u32,
    _pad0: u32,
    _pad1: u32,
    row: array<vec4<u32>, {{.MaxRows}}>,
}
{{end}}
