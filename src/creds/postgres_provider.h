// The PostgreSQL provider (postgres_provider.cc): per-task LOGIN roles created by a CREATEROLE
// admin, revoked NOLOGIN → terminate sessions → DROP OWNED → DROP ROLE. Built by MakeProvider.
#pragma once

#include <memory>

#include "creds/provider.h"

namespace writ::creds {

// `config` was validated by MakeProvider (conninfo present, grants well-formed).
std::unique_ptr<CredentialProvider> NewPostgresProvider(ProviderConfig config);

}  // namespace writ::creds
