# Install rules: `cmake --install <build> --prefix P` puts
#   P/include/dtrain/*.h                     the public headers
#   P/lib/libdtrain_<layer>.a                one static library per layer
#   P/lib/cmake/dtrain/                      dtrainConfig.cmake, its version file and the targets
#   P/bin/dtrain                             the command-line tool
#   P/libexec/dtrain/                        the benchmark driver and its peers (`dtrain bench`)
# so that a user's project finds dtrain with find_package(dtrain [COMPONENTS <layer>...]) and
# links dtrain::<layer> (docs/library.md). The LibTorch layer is exported on its own
# (dtrainTrainTargets.cmake), which the config loads only when the train component is wanted,
# after finding Torch; the other layers need no LibTorch.
include(CMakePackageConfigHelpers)

set(DTRAIN_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/dtrain)

set(comm_layers)
foreach(layer ${DTRAIN_LAYERS})
  if(NOT layer STREQUAL "train")
    list(APPEND comm_layers dtrain_${layer})
  endif()
endforeach()

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/dtrain DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS ${comm_layers} EXPORT dtrainTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT dtrainTargets NAMESPACE dtrain:: DESTINATION ${DTRAIN_CMAKE_DIR})
if(TARGET dtrain_train)
  install(TARGETS dtrain_train EXPORT dtrainTrainTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(EXPORT dtrainTrainTargets NAMESPACE dtrain:: DESTINATION ${DTRAIN_CMAKE_DIR})
endif()
install(TARGETS dtrain RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# What the installed config must know about this build.
set(DTRAIN_BUILT_LAYERS ${DTRAIN_LAYERS})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/dtrainConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/dtrainConfig.cmake
                              INSTALL_DESTINATION ${DTRAIN_CMAKE_DIR})
# 0.x: a new minor version may change the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/dtrainConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/dtrainConfig.cmake ${PROJECT_BINARY_DIR}/dtrainConfigVersion.cmake
        DESTINATION ${DTRAIN_CMAKE_DIR})
