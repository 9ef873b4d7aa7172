package audit

// CanRewrite is canRewrite, for the external tests.
var CanRewrite = canRewrite
