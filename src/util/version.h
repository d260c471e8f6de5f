// The version of ocireg and ocibuild, and the git commit they were built
// from ("unknown" outside a git checkout). Fixed at configure time.
#pragma once

namespace ocib {

const char* Version();
const char* GitCommit();

}  // namespace ocib
