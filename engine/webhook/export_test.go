package webhook

// Eventually is eventually, for the end-to-end tests (package webhook_test).
var Eventually = eventually
