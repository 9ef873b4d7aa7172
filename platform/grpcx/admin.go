package grpcx

// The admin listeners' variables and defaults. The services listen on them
// and moreidctl dials them; both read these constants so that a changed
// default cannot leave the CLI dialling a port nothing listens on.
const (
	EnvUserAdminAddr   = "MOREID_USER_ADMIN_ADDR"
	EnvAPIKeyAdminAddr = "MOREID_APIKEY_ADMIN_ADDR"
	EnvAuthAdminAddr   = "MOREID_AUTH_ADMIN_ADDR"

	DefaultUserAdminAddr   = "127.0.0.1:9191"
	DefaultAPIKeyAdminAddr = "127.0.0.1:9192"
	DefaultAuthAdminAddr   = "127.0.0.1:9190"
)
