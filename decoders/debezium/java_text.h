// Text the way Debezium's JVM makes it: Java's Double.toString and Float.toString (what Kafka's
// JsonConverter, through Jackson, prints for FLOAT64 and FLOAT32 values), the topic-name sanitizing of
// Debezium's AbstractTopicNamingStrategy (per UTF-16 code unit), java.util.HashMap's iteration order over
// String keys (hstore as JSON) and UUID.nameUUIDFromBytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace cdcsync::debezium {

// A finite double as Double.toString writes it: the shortest digits that round-trip, "4.0", "0.001",
// "1.0E7", "1.5E-5", "-0.0". (Java 18 and older print a non-shortest digit string for a few values,
// JDK-4511638; this is what Java 19+ prints.)
// Writes into `buf` and returns the text.
inline constexpr std::size_t kJavaNumberChars = 40;
std::string_view java_double(char (&buf)[kJavaNumberChars], double d);
// A finite float as Float.toString writes it (the shortest digits for a float).
std::string_view java_float(char (&buf)[kJavaNumberChars], float f);

// AbstractTopicNamingStrategy: the parts joined by '.', blank parts (only characters <= U+0020) left out;
// then sanitizedTopicName: every UTF-16 code unit outside [A-Za-z0-9._-] becomes '_' (so a character outside
// the Basic Multilingual Plane becomes "__"), cut to 249 characters, "." and ".." replaced by "_" and "__".
// Malformed UTF-8 counts one code unit per byte that does not decode, as Java's decoder replaces each.
std::string debezium_topic_name(std::initializer_list<std::string_view> parts);

// The order in which a java.util.HashMap<String, String>, filled by put() in the given order (distinct keys,
// UTF-8 text), iterates: indexes into `keys`. Buckets grow as HashMap's do (capacity 16, load factor 0.75,
// and a bucket of 9 keys in a table under 64 doubles it); a bucket that HashMap would turn into a tree (9
// colliding keys in a table of 64 or more) keeps insertion order here.
std::vector<std::size_t> java_hash_map_order(const std::vector<std::string_view>& keys);
// String.hashCode of UTF-8 text, over its UTF-16 code units.
std::int32_t java_string_hash(std::string_view utf8);

// UUID.nameUUIDFromBytes: the version 3 (MD5) UUID of `bytes`, in its canonical lowercase text.
std::string java_name_uuid(std::string_view bytes);

}  // namespace cdcsync::debezium
