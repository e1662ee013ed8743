// ThreadSanitizer builds only: force-included (-include) into every C++ file of the tree
// (CMakeLists.txt, WRIT_SANITIZE=thread).
//
// protobuf 3.21's google/protobuf/map_field.h gives MapFieldBase two extra members (seq1_, seq2_, a
// const/mutable access checker) when __SANITIZE_THREAD__ is defined. Debian's libprotobuf is built
// without TSan, so its out-of-line MapFieldBase code (SyncRepeatedFieldWithMap,
// MutableRepeatedField, the well-known types' ByteSizeLong/_InternalSerialize, e.g.
// google.protobuf.Struct's `fields` map) uses the 72-byte layout while TSan-built code would use 80
// bytes: every message with a map field would be read at shifted offsets. Seen as a SEGV in
// Reflection::AddMessage on an intent's `params` map (writd start), and as grpc++'s
// "ProtoBufferWriter: byte_count_ < total_size_" abort serializing a ValidateJWTSVID reply (its
// `claims` Struct). Including map_field.h first, with the macro hidden, gives writ's code the
// library's layout; the macro is back for everything after it.
#pragma once
#ifdef __cplusplus
#pragma push_macro("__SANITIZE_THREAD__")
#undef __SANITIZE_THREAD__
#include <google/protobuf/map_field.h>
#pragma pop_macro("__SANITIZE_THREAD__")
#endif
