#include "util/version.h"

namespace ocib {

const char* Version() { return OCIB_VERSION; }
const char* GitCommit() { return OCIB_GIT_COMMIT; }

}  // namespace ocib
