// Builtin PostgreSQL type OIDs (src/include/catalog/pg_type.dat); they are fixed across servers and versions.
// Extension types (citext, hstore, ltree) get dynamic OIDs and are found through TypeCatalog::load.
#pragma once

#include "decoders/change.h"

namespace cdcsync::pgtype {

inline constexpr Oid kBool = 16;
inline constexpr Oid kBytea = 17;
inline constexpr Oid kChar = 18;
inline constexpr Oid kName = 19;
inline constexpr Oid kInt8 = 20;
inline constexpr Oid kInt2 = 21;
inline constexpr Oid kInt4 = 23;
inline constexpr Oid kText = 25;
inline constexpr Oid kOid = 26;
inline constexpr Oid kJson = 114;
inline constexpr Oid kXml = 142;
inline constexpr Oid kPoint = 600;
inline constexpr Oid kCidr = 650;
inline constexpr Oid kFloat4 = 700;
inline constexpr Oid kFloat8 = 701;
inline constexpr Oid kMacaddr8 = 774;
inline constexpr Oid kMoney = 790;
inline constexpr Oid kMacaddr = 829;
inline constexpr Oid kInet = 869;
inline constexpr Oid kBpchar = 1042;
inline constexpr Oid kVarchar = 1043;
inline constexpr Oid kDate = 1082;
inline constexpr Oid kTime = 1083;
inline constexpr Oid kTimestamp = 1114;
inline constexpr Oid kTimestampTz = 1184;
inline constexpr Oid kInterval = 1186;
inline constexpr Oid kTimeTz = 1266;
inline constexpr Oid kBit = 1560;
inline constexpr Oid kVarbit = 1562;
inline constexpr Oid kNumeric = 1700;
inline constexpr Oid kUuid = 2950;
inline constexpr Oid kPgLsn = 3220;
inline constexpr Oid kTsvector = 3614;
inline constexpr Oid kJsonb = 3802;
inline constexpr Oid kInt4Range = 3904;
inline constexpr Oid kNumRange = 3906;
inline constexpr Oid kTsRange = 3908;
inline constexpr Oid kTstzRange = 3910;
inline constexpr Oid kDateRange = 3912;
inline constexpr Oid kInt8Range = 3926;

// Array types of the builtins above.
inline constexpr Oid kJsonArray = 199;
inline constexpr Oid kBoolArray = 1000;
inline constexpr Oid kByteaArray = 1001;
inline constexpr Oid kInt2Array = 1005;
inline constexpr Oid kInt4Array = 1007;
inline constexpr Oid kTextArray = 1009;
inline constexpr Oid kBpcharArray = 1014;
inline constexpr Oid kVarcharArray = 1015;
inline constexpr Oid kInt8Array = 1016;
inline constexpr Oid kFloat4Array = 1021;
inline constexpr Oid kFloat8Array = 1022;
inline constexpr Oid kDateArray = 1182;
inline constexpr Oid kTimestampArray = 1115;
inline constexpr Oid kTimestampTzArray = 1185;
inline constexpr Oid kNumericArray = 1231;
inline constexpr Oid kUuidArray = 2951;
inline constexpr Oid kJsonbArray = 3807;

// OIDs below this are assigned by initdb; user and extension objects start here.
inline constexpr Oid kFirstNormalObjectId = 16384;

}  // namespace cdcsync::pgtype
