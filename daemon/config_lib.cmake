# The daemon's configuration: typed keys (daemon/settings.h), TOML loading and validation, the key reference.
add_library(cdcsync_config STATIC ${CMAKE_CURRENT_LIST_DIR}/config.cpp)
target_include_directories(cdcsync_config PUBLIC ${CDCSYNC_SOURCE_ROOT})
target_link_libraries(cdcsync_config PUBLIC cdcsync_decoders fmt::fmt PRIVATE tomlplusplus::tomlplusplus
                                            PkgConfig::LIBPQ cdcsync_build_flags)
