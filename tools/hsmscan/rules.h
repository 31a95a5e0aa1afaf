#pragma once
// The HPSSPy rules (config, Python regexes) live below backends/, because the
// HPSS backend bundles writes by them too; hsmscan uses them by short names.
#include "backends/hpss/hpsspy/py_regex.h"
#include "backends/hpss/hpsspy/scan_config.h"
namespace hsmfs::hsmscan {

using backends::hpss::hpsspy::BaseName;
using backends::hpss::hpsspy::DirName;
using backends::hpss::hpsspy::FirstMatch;
using backends::hpss::hpsspy::IsValidUtf8;
using backends::hpss::hpsspy::LoadScanConfig;
using backends::hpss::hpsspy::ParseScanConfig;
using backends::hpss::hpsspy::PathJoin;
using backends::hpss::hpsspy::PhysicalDisks;
using backends::hpss::hpsspy::PyRegex;
using backends::hpss::hpsspy::Rule;
using backends::hpss::hpsspy::ScanConfig;
using backends::hpss::hpsspy::SectionRules;
using backends::hpss::hpsspy::TranslatePythonPattern;

}  // namespace hsmfs::hsmscan
