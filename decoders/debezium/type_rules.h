// What Debezium reads from a column's type: numeric scale, adaptive time precision, a string form.
#pragma once

#include <cstdint>

#include "decoders/type_catalog.h"

namespace cdcsync::debezium {

// The numeric typmod packs ((precision << 16) | scale) + 4; since PostgreSQL 15 the scale is an 11-bit
// signed value. Below 4 (-1): no declared precision, a variable scale.
inline int typmod_scale(std::int32_t typmod) {
  const int raw = (typmod - 4) & 0x7FF;
  return raw >= 1024 ? raw - 2048 : raw;
}
inline int typmod_precision(std::int32_t typmod) {
  return ((typmod - 4) >> 16) & 0xFFFF;
}
inline bool variable_scale(std::int32_t numeric_typmod) {
  return numeric_typmod < 4;
}

// time.precision.mode=adaptive: precision 0..3 -> milliseconds, otherwise (4..6, or none: 6) microseconds.
inline bool millis_precision(std::int32_t typmod) {
  return typmod >= 0 && typmod <= 3;
}

// Types whose value is a JSON string of their text (so an unchanged TOAST value can be the placeholder).
inline bool is_stringish(TypeKind k) {
  switch (k) {
    case TypeKind::Text:
    case TypeKind::Json:
    case TypeKind::Xml:
    case TypeKind::Uuid:
    case TypeKind::Enum:
    case TypeKind::Ltree:
    case TypeKind::Range:
    case TypeKind::Unknown:
      return true;
    default:
      return false;
  }
}

}  // namespace cdcsync::debezium
